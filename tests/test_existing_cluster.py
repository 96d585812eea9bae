"""A stack on a cluster it is given (the e2e stack): no node, no Cloudflare, no GitHub."""

from __future__ import annotations

from conftest import DUMMY_SECRETS

from spitikos.engine import is_secret, plain

KUBECONFIG = DUMMY_SECRETS["spitikos:kubeconfig"]
PROVIDER = "pulumi:providers:kubernetes"


def test_no_node_is_touched(own_cluster):
    types = {r.type for r in own_cluster.all()}
    assert not [t for t in types if t.startswith("command:")], "a remote command on a cluster the stack is given"
    assert "spitikos:k3s:K3sCluster" not in types


def test_every_kubernetes_object_goes_through_the_provider_made_from_the_given_kubeconfig(own_cluster):
    (provider,) = own_cluster.of_type(PROVIDER)
    assert is_secret(provider.inputs["kubeconfig"]) and plain(provider.inputs["kubeconfig"]) == KUBECONFIG
    assert provider.parent == own_cluster.one("spitikos:cluster:ExistingCluster").urn
    objects = [r for r in own_cluster.all() if r.custom and r.type.startswith("kubernetes:")]
    assert len(objects) >= 20
    for obj in objects:
        assert obj.provider.rsplit("::", 1)[0] == provider.urn, obj.name


def test_nothing_outside_the_cluster_is_built(own_cluster):
    packages = {r.type.split(":")[0] for r in own_cluster.all() if r.custom}
    # random and tls make secrets and certificates in the state, reaching nothing.
    assert packages == {"kubernetes", "random", "tls", "pulumi"}, packages
    assert not [r for r in own_cluster.all() if r.type in ("pulumi:providers:github", "pulumi:providers:cloudflare")]
    assert not own_cluster.kubernetes("Deployment") or not [
        d for d in own_cluster.kubernetes("Deployment") if d.values["metadata"].get("namespace") == "cloudflared"
    ]
    assert "tunnelId" not in own_cluster.exports and "repositories" not in own_cluster.exports


def test_the_root_reads_the_given_url_with_no_deploy_key(own_cluster):
    root = own_cluster.one("kubernetes:argoproj.io/v1alpha1:Application").values["spec"]["source"]
    assert root == {
        "repoURL": "https://github.com/spitikos/spitikos-infra.git",
        "path": "tests/e2e/apps",
        "targetRevision": "main",
    }
    repository_secrets = [
        s
        for s in own_cluster.kubernetes("Secret")
        if s.values["metadata"].get("labels", {}).get("argocd.argoproj.io/secret-type") == "repository"
    ]
    assert repository_secrets == []


def test_applications_come_from_the_root_repository_and_the_listed_ones_only(own_cluster):
    (default,) = [p for p in own_cluster.kubernetes("AppProject") if p.values["metadata"]["name"] == "default"]
    assert default.values["spec"]["sourceRepos"] == [
        "https://github.com/spitikos/spitikos-infra.git",
        "https://github.com/argoproj/argocd-example-apps.git",
    ]
    (root,) = [p for p in own_cluster.kubernetes("AppProject") if p.values["metadata"]["name"] == "root"]
    assert root.values["spec"]["sourceRepos"] == ["https://github.com/spitikos/spitikos-infra.git"]


def test_redis_data_takes_the_clusters_default_storage_class(own_cluster):
    (claim,) = own_cluster.kubernetes("PersistentVolumeClaim")
    assert "storageClassName" not in claim.values["spec"] and claim.protect


def test_the_plan_says_what_is_skipped(own_cluster, stack):
    from spitikos.plan import OPTIONAL_PARTS, from_recording, render, skipped

    plan = from_recording(own_cluster, "e2e")
    assert skipped(plan) == list(OPTIONAL_PARTS.values())
    (line,) = [x for x in render(plan).splitlines() if "skipped:" in x]
    assert "node bootstrap" in line and "Cloudflare" in line and "GitHub" in line
    assert plan.to_json()["skipped"] == skipped(plan)
    assert skipped(from_recording(stack)) == []


def test_the_plan_of_a_given_cluster_speaks_of_no_node_and_no_k3s(own_cluster, stack):
    """No node is prepared, no SQLite of ours, no k3s objects to collide with: the lines a Pi's plan has."""
    from spitikos.plan import from_recording, render

    node_only = ("after the node is prepared", "datastore sqlite", "new k3s cluster", "node install", "Nodes (SSH")
    text = render(from_recording(own_cluster, "e2e"))
    lines = [line for line in text.splitlines() if "skipped:" not in line and not line.lstrip().startswith("- ")]
    assert [line for line in lines if any(s in line for s in node_only) or "k3s" in line] == []
    assert "Cluster: the one `kubeconfig` names; no node is set up." in text
    assert "cluster state: the given cluster's own" in text
    # A stack with a node keeps every one of them.
    pi5 = render(from_recording(stack))
    assert all(s in pi5 for s in node_only) and "k3s itself" in pi5


def test_without_cloudflare_the_gateway_routes_argo_cds_hostname_alone(own_cluster):
    """docs/own-cluster.md: Argo CD keeps its HTTPRoute at argocd.<domain>; no Ingress, no other route."""
    routes = [r for r in own_cluster.all() if r.type.startswith("kubernetes:gateway.networking.k8s.io/v1:")]
    routes = [r for r in routes if r.type.endswith(("HTTPRoute", "GRPCRoute"))]
    from conftest import stack_config

    domain = stack_config("e2e")["spitikos:domain"]  # the own-cluster variant is the e2e stack
    assert [h for r in routes for h in r.values["spec"]["hostnames"]] == [f"argocd.{domain}"]
    assert not own_cluster.kubernetes("Ingress")
