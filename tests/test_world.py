"""A cluster is never empty: the program must not create what k3s, the charts' controllers or
(for the migration) the live organization already hold. See spitikos/world.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from spitikos import world
from spitikos.engine import Recording, Registration, run
from spitikos.plan import Plan, from_recording, render

ROOT = Path(__file__).resolve().parent.parent
HANDOVER = ROOT / "docs" / "migration" / "handover.md"


def engine_urn(recording: Recording, reg: Registration) -> str:
    """The URN the real engine gives `reg`: its type qualified by every ancestor's type (the mocks
    qualify it by the parent's type only), as `pulumi import` and `--exclude` must name it."""
    types = [reg.type]
    parent = recording.registrations.get(reg.parent)
    while parent is not None:
        types.insert(0, parent.type)
        parent = recording.registrations.get(parent.parent)
    return f"urn:pulumi:pi5::spitikos::{'$'.join(types)}::{reg.name}"


def test_pi5_creates_nothing_a_new_cluster_already_holds(stack):
    assert world.collisions(stack, world.FRESH_WORLD) == []


def test_a_new_operators_stack_creates_nothing_a_new_cluster_already_holds(fresh):
    assert world.collisions(fresh, world.FRESH_WORLD) == []


def test_argocds_default_project_is_patched_and_the_root_project_created(stack):
    """argocd-server makes `default` before the release is ready; the program may only patch it."""
    patched = stack.one("kubernetes:argoproj.io/v1alpha1:AppProjectPatch")
    assert patched.values["metadata"]["name"] == "default"
    assert patched.values["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
    created = [world.as_existing(r).name for r in world.plain_creates(stack) if r.values.get("kind") == "AppProject"]
    assert created == ["root"]


def _creates_what_exists():
    provider = k8s.Provider("cluster", kubeconfig="stand-in")
    opts = pulumi.ResourceOptions(provider=provider)
    project = {"metadata": {"name": "default", "namespace": "argocd"}, "spec": {"sourceRepos": []}}
    k8s.apiextensions.CustomResource(
        "project", api_version="argoproj.io/v1alpha1", kind="AppProject", **project, opts=opts
    )
    k8s.core.v1.Namespace("kube-system", metadata={"name": "kube-system"}, opts=opts)
    k8s.core.v1.Namespace("mine", metadata={"name": "mine"}, opts=opts)
    k8s.core.v1.ServiceAccount("default-sa", metadata={"name": "default", "namespace": "mine"}, opts=opts)
    k8s.storage.v1.StorageClass("local-path", metadata={"name": "local-path"}, provisioner="x", opts=opts)
    # Exempt: a patch, an import, a release, and a name nothing holds.
    k8s.apiextensions.CustomResourcePatch(
        "project-patch", api_version="argoproj.io/v1alpha1", kind="AppProject", **project, opts=opts
    )
    k8s.core.v1.Namespace(
        "imported",
        metadata={"name": "kube-public"},
        opts=pulumi.ResourceOptions(provider=provider, import_="kube-public"),
    )
    k8s.helm.v3.Release("keda", name="keda", chart="keda", namespace="keda", opts=opts)
    k8s.core.v1.ConfigMap("free", metadata={"name": "free", "namespace": "kube-system"}, opts=opts)


@pytest.fixture(scope="module")
def colliding() -> Recording:
    return run(_creates_what_exists)


def test_creating_an_object_the_world_holds_is_a_collision(colliding):
    found = {c.urn.rsplit("::", 1)[-1]: str(c.existing) for c in world.collisions(colliding, world.FRESH_WORLD)}
    assert found == {
        "project": "AppProject argocd/default",
        "kube-system": "Namespace kube-system",
        "default-sa": "ServiceAccount mine/default",  # every namespace gets one, the program's own too
        "local-path": "StorageClass local-path",
    }


def test_a_release_collides_with_objects_it_renders_unless_they_carry_its_ownership(colliding):
    crd = world.Existing(world.CRD, "CustomResourceDefinition", None, "scaledobjects.keda.sh")

    def refused_by_keda(held):
        return [str(c.existing) for c in world.collisions(colliding, held) if c.urn.endswith("::keda")]

    assert refused_by_keda([crd]) == [str(crd)]
    assert refused_by_keda(world.apply([crd], _keda_ownership("crd scaledobjects.keda.sh")).world) == []
    half = world.apply([crd], "kubectl annotate crd scaledobjects.keda.sh meta.helm.sh/release-name=keda").world
    assert refused_by_keda(half) == [str(crd)], "Helm adopts only with both annotations and the label"


def _keda_ownership(target: str) -> str:
    return (
        f"kubectl annotate {target} meta.helm.sh/release-name=keda meta.helm.sh/release-namespace=keda\n"
        f"kubectl label {target} app.kubernetes.io/managed-by=Helm\n"
    )


def test_the_plan_shows_collisions_in_a_section_of_its_own(stack, colliding):
    heading = "Collisions with what a new k3s cluster and the platform's controllers create themselves:"
    assert render(from_recording(stack)).endswith(f"{heading}\n  none\n")
    section = render(Plan("test", colliding, [])).split(heading)[1]
    assert "  kube-system: Namespace kube-system exists" in section
    assert "none" not in section


# --- the live organization and its handover -------------------------------------------------


def handover_script() -> str:
    return "\n".join(re.findall(r"```sh\n(.*?)```", HANDOVER.read_text(), re.S))


def _urn_by_name(stack: Recording, name: str) -> str:
    return engine_urn(stack, stack.by_name(name))


def test_the_live_cluster_collides_with_pi5_before_the_handover(stack):
    found = {(c.urn.rsplit("::", 1)[-1], str(c.existing)) for c in world.collisions(stack, world.LIVE_WORLD)}
    assert {
        ("spitikos-argocd-namespace", "Namespace argocd"),
        ("spitikos-api-namespace", "Namespace api"),
        ("spitikos-argocd-ingress", "Ingress argocd/argocd-ingress"),
        ("spitikos-keda-release", "RoleBinding kube-system/keda-operator-auth-reader"),
        *(("spitikos-keda-release", f"CustomResourceDefinition {crd}") for crd in world.KEDA_CRDS),
    } == found
    assert [a.name for a in world.orphaned_applications(world.LIVE_WORLD)] == ["grafana"]


def test_after_the_handover_pi5_collides_with_nothing_live(stack):
    done = world.apply(world.LIVE_WORLD, handover_script())
    assert world.collisions(stack, done.world, done.imported) == []
    assert world.orphaned_applications(done.world) == []
    kept = {str(o) for o in done.world}
    assert {"Namespace argocd", "Namespace api"} <= kept, "the namespaces are imported, never deleted"
    assert {f"CustomResourceDefinition {crd}" for crd in world.KEDA_CRDS} <= kept, "deleting a CRD deletes its objects"


def test_the_handovers_imports_match_the_program_and_name_its_provider(stack):
    imports = world.apply(world.LIVE_WORLD, handover_script()).imports
    assert sorted(i["name"] for i in imports) == ["spitikos-api-namespace", "spitikos-argocd-namespace"]
    for found in imports:
        reg = stack.by_name(found["name"])
        assert found["type"] == reg.type
        assert found["parent"] == f"parent={engine_urn(stack, stack.registrations[reg.parent])}"
        provider_urn = reg.provider.rsplit("::", 1)[0]
        assert found["provider"] == f"kubernetes={engine_urn(stack, stack.registrations[provider_urn])}"


def test_the_handovers_exclusions_name_the_namespaces_it_imports(stack):
    script = handover_script()
    for name in ("spitikos-argocd-namespace", "spitikos-api-namespace"):
        assert f"--exclude '{_urn_by_name(stack, name)}'" in script


def test_the_model_refuses_a_command_it_cannot_apply():
    with pytest.raises(ValueError, match="cannot apply: kubectl apply -f"):
        world.apply(world.LIVE_WORLD, "kubectl apply -f x.yaml")
    with pytest.raises(ValueError, match="no Ingress argocd/argocd-server"):
        world.apply(world.LIVE_WORLD, "kubectl -n argocd delete ingress argocd-server")


@pytest.mark.parametrize(
    "doc", ["README.md", "docs/operations.md", "docs/migration/README.md", "docs/migration/handover.md"]
)
def test_every_pulumi_import_names_one_of_the_stacks_explicit_providers(stack, doc):
    """The program uses explicit providers; the default one has no credentials."""
    providers = {engine_urn(stack, r) for r in stack.all() if r.type.startswith("pulumi:providers:")}
    text = (ROOT / doc).read_text().replace("\\\n", " ")
    for command in re.findall(r"pulumi import [^\n`]*", text):
        named = re.search(r"--provider '?[\w-]+=([^' ]+)", command)
        assert named, f"{doc}: `{command[:70]}...` names no --provider"
        assert named.group(1) in providers, f"{doc}: {named.group(1)} is not one of the stack's providers"


def test_the_handover_names_in_the_live_default_project_the_deployer_pulumi_names(stack):
    """The live `default` project names the applications' deployer before the release turns sync
    impersonation on: the same entries Pulumi's patch writes later, so no sync fails between."""
    script = handover_script()
    patch = next(w for w in world.commands(script) if w[:5] == ["kubectl", "-n", "argocd", "patch", "appproject"])
    written = json.loads(patch[patch.index("-p") + 1])["spec"]["destinationServiceAccounts"]
    default = next(p for p in stack.kubernetes("AppProject") if p.values["metadata"]["name"] == "default")
    assert written == default.values["spec"]["destinationServiceAccounts"]
    assert script.index("patch appproject default") < script.rindex("pulumi up --stack pi5\n")
