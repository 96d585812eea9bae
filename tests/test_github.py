"""GitHub as the source of truth, wired to the cluster."""

from __future__ import annotations

import pulumi
import pulumi_github as github
import pytest
import yaml
from conftest import DUMMY_SECRETS, fresh_config

from components.github import GitHub
from components.platform import github_args
from components.settings import load_settings
from spitikos.engine import plain, run

REPO = "github:index/repository:Repository"
RULESET = "github:index/repositoryRuleset:RepositoryRuleset"
WEBHOOK = "github:index/repositoryWebhook:RepositoryWebhook"
DEPLOY_KEY = "github:index/repositoryDeployKey:RepositoryDeployKey"
FILE = "github:index/repositoryFile:RepositoryFile"
PASSWORD = "random:index/randomPassword:RandomPassword"
ALERTS = "github:index/repositoryVulnerabilityAlerts:RepositoryVulnerabilityAlerts"
REAL_REPOSITORIES = ["api", "charts", "docs", "homepage", "spitikos"]


@pytest.fixture(scope="module")
def reviewed():
    """A private organization that requires a review: the example stack's settings with both set,
    and the one part of the platform they change (`github_args` is all that reads them) built from
    them, as the platform builds it: one run serves both settings' tests, a fifth of a whole one."""

    def github_part():
        cfg = load_settings()
        provider = github.Provider("spitikos-github", owner=cfg.github.owner, token=cfg.github.token)
        secret = pulumi.Output.secret("stand-in")
        return GitHub("spitikos-github", github_args(cfg, provider, secret, secret))

    return run(github_part, fresh_config(requiredReviews="1", repositoryVisibility="private"), list(DUMMY_SECRETS))


def webhook(recording, repo):
    return next(w for w in recording.of_type(WEBHOOK) if w.values["repository"] == repo)


def test_the_four_repositories_exist_with_the_settings_and_cannot_be_deleted(fresh):
    repos = {r.values["name"]: r for r in fresh.of_type(REPO)}
    assert sorted(repos) == ["api", "charts", "docs", "spitikos"]
    for repo in repos.values():
        assert repo.protect, f"{repo.name} is not protected"
        values = repo.values
        assert values["archiveOnDestroy"] is True
        assert values["deleteBranchOnMerge"] is True
        assert values["visibility"] == "public"
        assert "vulnerabilityAlerts" not in values, "deprecated input: RepositoryVulnerabilityAlerts replaces it"
    alerts = {a.values["repository"]: a.values["enabled"] for a in fresh.of_type(ALERTS)}
    assert alerts == dict.fromkeys(repos, True)
    defaults = {
        d.values["repository"]: d.values["branch"] for d in fresh.of_type("github:index/branchDefault:BranchDefault")
    }
    assert defaults == dict.fromkeys(repos, "main")


def test_main_is_protected_from_force_pushes_and_deletion_everywhere(stack):
    rulesets = {r.values["repository"]: r.values for r in stack.of_type(RULESET)}
    assert sorted(rulesets) == REAL_REPOSITORIES
    for ruleset in rulesets.values():
        assert ruleset["enforcement"] == "active" and ruleset["target"] == "branch"
        assert ruleset["conditions"]["refName"]["includes"] == ["~DEFAULT_BRANCH"]
        assert ruleset["rules"]["deletion"] is True and ruleset["rules"]["nonFastForward"] is True
        assert "pullRequest" not in ruleset["rules"]


def test_required_reviews_apply_to_every_repository_but_charts(reviewed):
    rulesets = {r.values["repository"]: r.values["rules"] for r in reviewed.of_type(RULESET)}
    for repo in ("spitikos", "api", "docs"):
        assert rulesets[repo]["pullRequest"]["requiredApprovingReviewCount"] == 1
    # The release workflow pushes image bumps straight to charts.
    assert "pullRequest" not in rulesets["charts"]


def test_deploy_keys_are_read_only_ed25519_and_their_private_halves_reach_argocd(stack):
    """Argo CD reads the seed repository, charts, and the root's repository (charts in pi5)."""
    keys = {k.values["repository"]: k for k in stack.of_type(DEPLOY_KEY)}
    assert sorted(keys) == ["charts", "spitikos"]
    for repo, deploy_key in keys.items():
        assert deploy_key.values["readOnly"] is True
        tls_key = stack.one("tls:index/privateKey:PrivateKey", f"spitikos-github-{repo}-deploy-key")
        assert tls_key.values["algorithm"] == "ED25519"
        assert deploy_key.values["key"] == tls_key.state["publicKeyOpenssh"]
        argocd_secret = stack.one("kubernetes:core/v1:Secret", f"spitikos-argocd-repo-{repo}")
        assert argocd_secret.values["stringData"]["sshPrivateKey"] == plain(tls_key.state["privateKeyOpenssh"])
        assert argocd_secret.values["stringData"]["url"] == f"git@github.com:spitikos/{repo}.git"
        assert argocd_secret.input_is_secret("stringData")


def test_docs_sync_workflow_and_the_api_share_one_generated_token(stack):
    """docs' own workflow POSTs to the api's Sync RPC (docs/decisions/0004); no webhook goes there."""
    variable = stack.one("github:index/actionsVariable:ActionsVariable", "spitikos-github-docs-sync-url").values
    assert variable == {
        "repository": "docs",
        "variableName": "DOCS_SYNC_URL",
        "value": "https://api.taehoonlee.cloud/docs.DocsService/Sync",
    }
    secret = stack.one(
        "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret", "spitikos-github-docs-docs-sync-token"
    )
    assert secret.values["repository"] == "docs" and secret.values["secretName"] == "DOCS_SYNC_TOKEN"
    # Only a job in docs' `sync` environment reads it, and only main may use that environment.
    environment = stack.one(
        "github:index/repositoryEnvironment:RepositoryEnvironment", "spitikos-github-docs-sync-environment"
    )
    assert environment.values["environment"] == secret.values["environment"] == "sync"
    assert environment.values["deploymentBranchPolicy"] == {"protectedBranches": False, "customBranchPolicies": True}
    assert environment.values["canAdminsBypass"] is False
    policy = stack.one(
        "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
        "spitikos-github-docs-sync-environment-main",
    )
    assert policy.values == {"repository": "docs", "environment": "sync", "branchPattern": "main"}
    assert policy.urn in secret.dependencies, "the secret exists only once main alone may read it"
    api_env = stack.one("kubernetes:core/v1:Secret", "spitikos-api-env")
    assert api_env.values["metadata"]["namespace"] == "api"
    assert secret.values["value"] == api_env.values["stringData"]["DOCS_SYNC_TOKEN"]
    generated = stack.one(PASSWORD, "spitikos-docs-sync-token")
    assert secret.values["value"] == plain(generated.state["result"])
    assert generated.urn in stack.ancestors_closure(secret.urn) & stack.ancestors_closure(api_env.urn)
    assert secret.input_is_secret("value") and api_env.input_is_secret("stringData")
    assert [w.values["repository"] for w in stack.of_type(WEBHOOK)] == ["charts"]


def test_charts_webhook_and_argocd_carry_the_same_generated_secret(stack):
    hook = webhook(stack, "charts")
    configuration = hook.values["configuration"]
    assert configuration["url"] == "https://argocd.taehoonlee.cloud/api/webhook"
    release = stack.one("kubernetes:helm.sh/v3:Release", "spitikos-argocd-release")
    assert configuration["secret"] == release.values["values"]["configs"]["secret"]["githubSecret"]
    generated = stack.one(PASSWORD, "spitikos-argocd-webhook-secret")
    assert configuration["secret"] == plain(generated.state["result"])
    assert generated.urn in stack.ancestors_closure(hook.urn)
    # GitHub does not wait for Argo CD's release, only for the secret it generated.
    assert release.urn not in stack.ancestors_closure(hook.urn)


def test_webhooks_are_json_push_hooks_with_tls_verified(stack):
    assert len(stack.of_type(WEBHOOK)) == 1
    for hook in stack.of_type(WEBHOOK):
        assert hook.values["events"] == ["push"] and hook.values["active"] is True
        assert hook.values["configuration"]["contentType"] == "json"
        assert hook.values["configuration"]["insecureSsl"] is False


ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
ENVIRONMENT_POLICY = "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
ENVIRONMENT_SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"


def test_no_actions_secret_is_readable_from_every_branch(stack, fresh):
    # A repository-level Actions secret reaches a workflow pushed to any branch (issue 18).
    for recording in (stack, fresh):
        assert recording.of_type("github:index/actionsSecret:ActionsSecret") == []
        assert recording.of_type("github:index/actionsOrganizationSecret:ActionsOrganizationSecret") == []


def test_the_release_token_is_a_secret_of_each_application_repositorys_release_environment(stack):
    secrets = [s for s in stack.of_type(ENVIRONMENT_SECRET) if s.values["secretName"] == "GHA_PAT"]
    assert sorted((s.values["repository"], s.values["environment"]) for s in secrets) == [
        ("api", "release"),
        ("homepage", "release"),
    ]
    for secret in secrets:
        assert "plaintextValue" not in secret.values, "deprecated input: `value` replaces it"
        assert secret.input_is_secret("value")
        assert secret.values["value"] == DUMMY_SECRETS["spitikos:ghaPat"]


def test_only_main_may_deploy_to_a_release_environment_and_its_secret_waits_for_that_rule(stack):
    environments = {
        e.values["repository"]: e for e in stack.of_type(ENVIRONMENT) if e.values["environment"] == "release"
    }
    policies = {
        p.values["repository"]: p for p in stack.of_type(ENVIRONMENT_POLICY) if p.values["environment"] == "release"
    }
    assert sorted(environments) == sorted(policies) == ["api", "homepage"]
    for repo, environment in environments.items():
        assert environment.values["environment"] == "release"
        # Only branches a policy names; `protectedBranches` would admit any protected branch.
        assert environment.values["deploymentBranchPolicy"] == {
            "customBranchPolicies": True,
            "protectedBranches": False,
        }
        assert environment.values["canAdminsBypass"] is False
        assert policies[repo].values == {"repository": repo, "environment": "release", "branchPattern": "main"}
        assert "tagPattern" not in policies[repo].values
        secret = next(
            s
            for s in stack.of_type(ENVIRONMENT_SECRET)
            if s.values["repository"] == repo and s.values["environment"] == "release"
        )
        # Created only once main alone may deploy: no window where another branch could read it.
        assert policies[repo].urn in secret.waits_for


def test_the_seeded_release_workflow_reads_the_token_only_in_the_release_environment(fresh):
    seeded = next(f for f in fresh.of_type(FILE) if f.values["file"] == ".github/workflows/release.yaml")
    workflow = yaml.safe_load(seeded.values["content"])
    # The caller has no GHA_PAT to pass any more: the secret must not be required of it.
    assert workflow[True]["workflow_call"]["secrets"]["GHA_PAT"]["required"] is False
    readers = [job for job, spec in workflow["jobs"].items() if "secrets.GHA_PAT" in str(spec)]
    assert readers == ["bump"]
    assert workflow["jobs"]["bump"]["environment"] == "release"


def test_seed_files_are_created_once_then_left_to_git(fresh):
    files = {f.values["file"]: f for f in fresh.of_type(FILE)}
    assert sorted(files) == [".github/workflows/release.yaml", "argocd/apps/README.md"]
    for seeded in files.values():
        assert seeded.values["repository"] == "spitikos" and seeded.values["branch"] == "main"
        assert "content" in seeded.ignore_changes
        assert seeded.retain_on_delete
        assert seeded.values["overwriteOnCreate"] is False
    workflow = yaml.safe_load(files[".github/workflows/release.yaml"].values["content"])
    assert "workflow_call" in workflow[True]  # YAML reads the key `on` as True
    steps = workflow["jobs"]["build"]["steps"]
    build = next(s for s in steps if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["platforms"] == "linux/arm64"
    assert "ghcr.io/" in str(steps)
    assert "image.tag" in str(workflow["jobs"]["bump"]["steps"])
    for step in steps:
        if "uses" in step:
            assert len(step["uses"].split("@")[1]) == 40, f"{step['uses']} is not pinned to a commit"


def test_rulesets_come_after_the_seed_commits(fresh):
    ruleset = next(r for r in fresh.of_type(RULESET) if r.values["repository"] == "spitikos")
    seeded = fresh.of_type(FILE)
    assert seeded
    for file in seeded:
        assert file.urn in ruleset.dependencies


def test_pi5_adopts_the_five_real_repositories_and_leaves_their_files_and_settings_alone(stack):
    repos = stack.of_type(REPO)
    assert sorted(r.import_id for r in repos) == REAL_REPOSITORIES
    for repo in repos:
        assert repo.protect and repo.retain_on_delete, "an adopted repository is never deleted"
        # Only the name is declared: any other input would fail the import on a harmless difference.
        assert set(repo.values) == {"name"}, f"{repo.name} declares {sorted(repo.values)}"
        for key in ("description", "visibility", "hasWiki", "allowMergeCommit", "securityAndAnalysis"):
            assert key in repo.ignore_changes
    assert stack.of_type(FILE) == []
    alerts = {a.values["repository"] for a in stack.of_type(ALERTS)}
    assert sorted(alerts) == REAL_REPOSITORIES


def test_every_input_a_repository_has_is_kept_when_adopted():
    """The keep-list names every input of the pinned provider's Repository but its name."""
    import inspect
    import re

    from components.github import ADOPTED_REPOSITORY_KEEPS

    params = inspect.signature(github.RepositoryArgs.__init__).parameters
    camel = {re.sub(r"_(\w)", lambda m: m.group(1).upper(), p) for p in params if p not in ("self", "__self__")}
    assert set(ADOPTED_REPOSITORY_KEEPS) == camel - {"name"}


def test_the_default_branch_is_set_never_renamed(stack):
    for default in stack.of_type("github:index/branchDefault:BranchDefault"):
        assert default.values["branch"] == "main" and default.values["rename"] is False


def test_the_token_setting_asks_for_the_workflow_permission_the_seed_needs():
    from conftest import ROOT

    described = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["githubToken"]["description"]
    assert "Workflows" in described and "workflow" in described.replace("Workflows", "")


def test_the_token_setting_asks_for_the_permission_environment_secrets_need():
    from conftest import ROOT

    # GitHub's REST API writes an environment's secrets with *Environments: write* (fine-grained).
    described = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["githubToken"]["description"]
    assert "Environments" in described


SECRET_SCANNING = {"secretScanning": {"status": "enabled"}, "secretScanningPushProtection": {"status": "enabled"}}


def test_public_repositories_scan_for_secrets_and_refuse_pushes_that_hold_one(fresh):
    repos = fresh.of_type(REPO)
    assert len(repos) == 4
    for repo in repos:
        assert repo.values["visibility"] == "public"
        assert repo.values["securityAndAnalysis"] == SECRET_SCANNING, repo.name


def test_private_repositories_do_not_ask_for_what_github_sells_them(reviewed):
    repos = reviewed.of_type(REPO)
    assert len(repos) == 4
    for repo in repos:
        assert repo.values["visibility"] == "private"
        assert "securityAndAnalysis" not in repo.values, repo.name


def test_ci_tokens_go_only_into_this_repositorys_environments_each_its_own(stack):
    """The deploy's and the drift check's environments (main only) hold the main token; the previews'
    environment holds the preview token; nothing holds both, and nothing is repository-wide."""
    from components.tunnel import CI_TOKEN_ID, CI_TOKEN_SECRET

    tokens = {
        t.values["name"].removeprefix("spitikos ci (").removesuffix(")"): t.state
        for t in stack.of_type("cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken")
    }
    secrets = [s for s in stack.of_type(ENVIRONMENT_SECRET) if s.values["secretName"].startswith("TUNNEL_")]
    held = {(s.values["repository"], s.values["environment"], s.values["secretName"]): s for s in secrets}
    expected = {"pi5": "main", "pi5-drift": "main", "pi5-preview": "preview"}
    assert sorted(held) == sorted(
        ("spitikos-infra", env, name) for env in expected for name in (CI_TOKEN_ID, CI_TOKEN_SECRET)
    )
    for (_, environment, name), secret in held.items():
        token = tokens[expected[environment]]
        assert secret.input_is_secret("value")
        assert secret.values["value"] == plain(token["clientId" if name == CI_TOKEN_ID else "clientSecret"])
    # The environments themselves (their reviewers and branch rules) are set by hand, never written:
    # writing one would reset its reviewers.
    assert not [e for e in stack.of_type(ENVIRONMENT) if e.values["repository"] == "spitikos-infra"]
    # The same tokens as stack outputs, secret, for a stack whose CI repository the program does not write.
    outputs, secret = stack.exports["ciAccessTokens"]
    assert secret and outputs["main"]["secret"] == plain(tokens["main"]["clientSecret"])
