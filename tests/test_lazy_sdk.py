"""The offline engine loads the provider SDKs as they are used (spitikos/lazy_sdk.py): the same
classes, made from the SDKs' own code, and only those the program needs. Without it every test
session and `make plan` spent 3 to 5 s importing types the platform never uses."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import pulumi
import pytest

from spitikos import lazy_sdk

SITE = Path(pulumi.__file__).parent.parent


def test_the_program_builds_a_small_part_of_the_sdks_types(ran_here):
    for name in ("pulumi_cloudflare._inputs", "pulumi_cloudflare.outputs", "pulumi_kubernetes.core.v1._inputs"):
        module = sys.modules[name]
        index = module.__loader__.index
        built = [c for c in index.bodies if c in vars(module)]
        assert 0 < len(built) < len(index.bodies) / 3, name
    assert not hasattr(sys.modules["pulumi_cloudflare"], "__all__"), "the real index was loaded"
    # The Gateway API's CRDs are a yaml.v2 ConfigGroup: the v1 module and `requests` stay unloaded.
    assert "pulumi_kubernetes.yaml.v2" in sys.modules
    assert "pulumi_kubernetes.yaml.yaml" not in sys.modules and "requests" not in sys.modules


def test_a_subpackage_made_lazily_by_its_package_is_the_same_subpackage():
    import pulumi_kubernetes

    assert pulumi_kubernetes.yaml.v2.ConfigGroup.__module__ == "pulumi_kubernetes.yaml.v2.ConfigGroup"
    # The v1 names still come from the v1 module when read (not here: it imports `requests`, 80 ms).
    init = SITE / "pulumi_kubernetes" / "yaml" / "__init__.py"
    _, exports, unlisted = lazy_sdk.group_exports(str(init), init.read_text())
    assert (exports, unlisted) == ({"ConfigFile": "yaml", "ConfigGroup": "yaml"}, [])


def test_a_class_made_lazily_is_the_class_its_statement_makes():
    import pulumi_cloudflare

    lazy = pulumi_cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgs
    # Its statement in the file: from its decorator to the next line at column 0 but its own.
    # (inspect.getsource parses the whole 4.6 MB file: 1.4 s.)
    lines = Path(sys.modules[lazy.__module__].__file__).read_text().splitlines(keepends=True)
    start = lines.index(f"class {lazy.__name__}:\n") - 1
    end = next(n for n in range(start + 2, len(lines)) if lines[n][:1] not in ("", " ", "\n"))
    source = "".join(lines[start:end])
    namespace = dict(vars(sys.modules[lazy.__module__]))
    assert source.startswith("@pulumi.input_type\nclass ")
    exec(compile(source, "<statement>", "exec", dont_inherit=True), namespace)  # noqa: S102 - the SDK's own statement
    eager = namespace[lazy.__name__]
    assert (lazy.__module__, lazy.__qualname__) == ("pulumi_cloudflare._inputs", eager.__qualname__)
    assert inspect.signature(lazy) == inspect.signature(eager)
    translate = pulumi._types.input_type_py_to_pulumi_names
    assert translate(lazy) == translate(eager)
    assert translate(lazy)["origin_request"] == "originRequest"
    # The nested types its hints name are there when the SDK resolves them.
    assert pulumi._types.input_type_types(lazy)["originRequest"].__name__ == (
        "ZeroTrustTunnelCloudflaredConfigConfigIngressOriginRequestArgs"
    )


def test_a_resource_module_star_imports_the_types_it_names_and_they_resolve():
    from pulumi_kubernetes.networking.v1 import NetworkPolicy

    module = sys.modules[NetworkPolicy.__module__]
    assert "NetworkPolicySpecArgs" in vars(module)
    assert "IngressSpecArgs" not in vars(module)  # another resource's type
    hints = pulumi._types._types_from_py_properties(module.NetworkPolicyInitArgs)
    assert hints["spec"].__name__ == "NetworkPolicySpecArgs"


def test_an_api_group_imports_a_module_when_one_of_its_names_is_read():
    # A group no program or test of the suite reads: whichever tests ran before in this process
    # (pytest-xdist hands each worker its own share), none imported its modules.
    group = importlib.import_module("pulumi_kubernetes.storage.v1beta1")
    assert "pulumi_kubernetes.storage.v1beta1.StorageClass" not in sys.modules
    assert group.StorageClass.__module__ == "pulumi_kubernetes.storage.v1beta1.StorageClass"
    module = sys.modules["pulumi_kubernetes.storage.v1beta1.StorageClass"]
    assert group.StorageClassInitArgs is module.StorageClassInitArgs
    assert group.CSIDriverSpecArgs.__module__ == "pulumi_kubernetes.storage.v1beta1._inputs"
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        group.Nothing  # noqa: B018


def test_an_index_finds_a_resources_own_args_and_nested_types():
    import pulumi_github

    assert lazy_sdk.modules_of("RepositoryArgs") == ["_inputs", "repository"]
    assert lazy_sdk.modules_of("get_zone_output") == ["get_zone"]
    assert pulumi_github.RepositoryArgs.__module__ == "pulumi_github.repository"
    assert pulumi_github.RepositoryWebhookConfigurationArgs.__module__ == "pulumi_github._inputs"
    with pytest.raises(AttributeError, match="'pulumi_github' has no attribute 'NoSuchArgs'"):
        pulumi_github.NoSuchArgs  # noqa: B018


def test_modules_of_any_other_shape_load_as_they_are(tmp_path):
    odd = tmp_path / "_inputs.py"
    odd.write_text("import pulumi\n\n__all__ = [\n    'A',\n]\n\nclass A:\n    pass\n\nregister(A)\n")
    assert lazy_sdk.TypeIndex.of("odd._inputs", str(odd)) is None
    plain = tmp_path / "outputs.py"
    plain.write_text("import pulumi\n\n__all__ = [\n    'A',\n]\n\n@pulumi.output_type\nclass A(dict):\n    pass\n")
    assert set(lazy_sdk.TypeIndex.of("plain.outputs", str(plain)).bodies) == {"A"}
    # An `__init__` with any statement but the generator's imports and lazy subpackages runs as it is.
    init = SITE / "pulumi_kubernetes" / "apiextensions" / "__init__.py"
    odd_init = tmp_path / "__init__.py"
    odd_init.write_text("register(CustomResource)\n" + init.read_text())
    assert lazy_sdk.group_exports(str(odd_init), odd_init.read_text()) is None
    # Kubernetes's apiextensions/__init__: two star imports and its lazy v1 and v1beta1.
    code, exports, _ = lazy_sdk.group_exports(str(init), init.read_text())
    assert exports == dict.fromkeys(["CustomResourceArgs", "CustomResource"], "CustomResource") | dict.fromkeys(
        ["CustomResourcePatchArgs", "CustomResourcePatch"], "CustomResourcePatch"
    )
    assert "v1beta1" in code.co_names and "CustomResource" not in code.co_names
    init = SITE / "pulumi_kubernetes" / "core" / "v1" / "__init__.py"
    _, exports, unlisted = lazy_sdk.group_exports(str(init), init.read_text())
    assert (exports["Namespace"], exports["NamespacePatchArgs"], exports["PodSpecArgs"]) == (
        "Namespace",
        "NamespacePatch",
        "_inputs",
    )
    assert unlisted == []


def test_the_platforms_helm_release_comes_without_chart_and_its_http_client():
    """helm/v3's `helm` (Chart) has no `__all__`, and imports the SDK's YAML support and `requests`
    with it, for a platform that uses Release only."""
    group = importlib.import_module("pulumi_kubernetes.helm.v3")
    assert group.Release.__module__ == "pulumi_kubernetes.helm.v3.Release"
    assert group.outputs is sys.modules["pulumi_kubernetes.helm.v3.outputs"]
    assert "pulumi_kubernetes.helm.v3.helm" not in sys.modules
    assert group.__loader__.unlisted == ["helm"]


def test_a_module_without_all_is_imported_for_the_names_no_other_module_lists(tmp_path):
    """As the star imports would: its public names, unless a later module lists them."""
    folder = tmp_path / "group"
    folder.mkdir()
    (folder / "unlisted.py").write_text("import json\nChart = 'chart'\nRelease = 'replaced'\n_hidden = 1\n")
    (folder / "listed.py").write_text("import pulumi\n__all__ = [\n    'Release',\n]\nRelease = 'release'\n")
    (folder / "outputs.py").write_text("")
    init = folder / "__init__.py"
    init.write_text("from .unlisted import *\nfrom .listed import *\nfrom . import outputs\n")
    loader = lazy_sdk._LazyGroup(*lazy_sdk.group_exports(str(init), init.read_text()))
    spec = importlib.util.spec_from_file_location("lazy_group", init, loader=loader)
    spec.submodule_search_locations = [str(folder)]
    sys.modules["lazy_group"] = group = importlib.util.module_from_spec(spec)
    try:
        loader.exec_module(group)
        assert group.Release == "release" and group.outputs.__name__ == "lazy_group.outputs"
        assert "lazy_group.unlisted" not in sys.modules
        assert group.Chart == "chart" and group.json is sys.modules["json"]
        assert "lazy_group.unlisted" in sys.modules
        with pytest.raises(AttributeError, match="no attribute '_hidden'"):
            group._hidden  # noqa: B018
    finally:
        for name in [n for n in sys.modules if n == "lazy_group" or n.startswith("lazy_group.")]:
            del sys.modules[name]


def test_a_module_without_all_after_one_with_it_runs_the_init_as_it_is(tmp_path):
    """Its names would replace the earlier module's, and which they are is known only by running it."""
    (tmp_path / "listed.py").write_text("import pulumi\n__all__ = [\n    'A',\n]\nA = 1\n")
    (tmp_path / "unlisted.py").write_text("A = 2\n")
    init = tmp_path / "__init__.py"
    assert lazy_sdk.group_exports(str(init), "from .listed import *\nfrom .unlisted import *\n") is None
    _, exports, unlisted = lazy_sdk.group_exports(str(init), "from .unlisted import *\nfrom .listed import *\n")
    assert (exports, unlisted) == ({"A": "listed"}, ["unlisted"])
