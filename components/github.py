"""GitHub, the source of truth: the repositories, their rules, keys, webhooks and secrets.

Repositories are protected twice: `protect` stops Pulumi from deleting them, and
`archive_on_destroy` archives instead of deleting should protection ever be lifted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_github as github
import pulumi_tls as tls

SEED = Path(__file__).parent / "seed"
DEFAULT_BRANCH = "main"
OWNER_PLACEHOLDER = "__OWNER__"
# The names docs' `.github/workflows/sync.yaml` reads (docs/migration/docs-842b22a.patch); the
# token's name is also the api's `platform-env` key.
DOCS_SYNC_URL_VARIABLE = "DOCS_SYNC_URL"
DOCS_SYNC_ENVIRONMENT = "sync"
DOCS_SYNC_TOKEN = "DOCS_SYNC_TOKEN"  # noqa: S105 - a name, not a secret
# The Actions environment that holds the secrets release jobs need; only DEFAULT_BRANCH deploys to it.
RELEASE_ENVIRONMENT = "release"

# What an adopted repository keeps as its owner set it: every input of `github.Repository`
# (pulumi-github 6.15.0) but its name. Declaring them would make the import fail on any
# harmless difference with the live repository ("inputs to import do not match").
ADOPTED_REPOSITORY_KEEPS = [
    "allowAutoMerge", "allowForking", "allowMergeCommit", "allowRebaseMerge", "allowSquashMerge",
    "allowUpdateBranch", "archiveOnDestroy", "archived", "autoInit", "defaultBranch", "deleteBranchOnMerge",
    "description", "etag", "fork", "gitignoreTemplate", "hasDiscussions", "hasDownloads", "hasIssues",
    "hasProjects", "hasWiki", "homepageUrl", "ignoreVulnerabilityAlertsDuringRead", "isTemplate",
    "licenseTemplate", "mergeCommitMessage", "mergeCommitTitle", "pages", "private", "securityAndAnalysis",
    "sourceOwner", "sourceRepo", "squashMergeCommitMessage", "squashMergeCommitTitle", "template", "topics",
    "visibility", "vulnerabilityAlerts", "webCommitSignoffRequired",
]  # fmt: skip


@dataclass
class WebhookArgs:
    """A push webhook on `repository` to `url`, signed with `secret`."""

    repository: str
    url: str
    secret: pulumi.Input[str]


@dataclass
class DocsSyncArgs:
    """What the `docs` repository's own sync workflow reads: the api's Sync URL as an Actions
    variable, and the token the api checks as a secret of its `sync` environment (docs/decisions/0004)."""

    repository: str
    url: str
    token: pulumi.Input[str]


@dataclass
class CiSecretsArgs:
    """Secrets of an Actions environment of `repository` (this infrastructure repository), which the
    program does not manage: its reviewers and branch rules are set by hand (docs/decisions/0005),
    since writing the environment would reset them."""

    repository: str
    environments: Mapping[str, Mapping[str, pulumi.Input[str]]]
    """Per environment, each secret's name and value."""


@dataclass
class GitHubArgs:
    provider: github.Provider
    owner: str
    repositories: Sequence[str]
    central_repository: str
    """Holds Argo CD's `argocd/apps` and the reusable release workflow."""
    deploy_key_repositories: Sequence[str]
    """Repositories Argo CD reads, each with a read-only deploy key."""
    application_repositories: Sequence[str]
    """Repositories that run the release workflow, so need the GHA_PAT secret."""
    charts_repository: str
    webhooks: Sequence[WebhookArgs]
    release_token: pulumi.Input[str]
    visibility: str = "public"
    required_reviews: int = 0
    adopt_existing: bool = False
    docs_sync: DocsSyncArgs | None = None
    ci: CiSecretsArgs | None = None


def seed_file(name: str, owner: str) -> str:
    return (SEED / name).read_text().replace(OWNER_PLACEHOLDER, owner)


class GitHub(pulumi.ComponentResource):
    repositories: dict[str, github.Repository]
    deploy_keys: dict[str, pulumi.Output[str]]
    """Private halves of the read-only deploy keys, by repository. Secret."""
    ssh_urls: dict[str, str]

    def __init__(self, name: str, args: GitHubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            "spitikos:github:GitHub",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=[args.provider])),
        )
        self.repositories = {}
        defaults = self._repositories(name, args)
        # Seeded before the rulesets exist: a required-review rule would refuse the commits.
        seeded = self._seed_files(name, args, defaults)
        for repo in args.repositories:
            self._ruleset(name, repo, args, [defaults[repo], *seeded[repo]])
        self.ssh_urls = {repo: f"git@github.com:{args.owner}/{repo}.git" for repo in args.repositories}
        self.deploy_keys = self._deploy_keys(name, args)
        self._webhooks(name, args)
        self._release_secrets(name, args)
        if args.docs_sync:
            self._docs_sync(name, args.docs_sync)
        if args.ci:
            self._ci_secrets(name, args.ci)
        self.register_outputs({"ssh_urls": self.ssh_urls})

    def _repositories(self, name: str, args: GitHubArgs) -> dict[str, github.BranchDefault]:
        """Every repository, created or adopted, with main as its default branch."""
        defaults: dict[str, github.BranchDefault] = {}
        for repo in args.repositories:
            self.repositories[repo] = self._repository(name, repo, args)
            defaults[repo] = github.BranchDefault(
                f"{name}-{repo}-default-branch",
                repository=self.repositories[repo].name,
                branch=DEFAULT_BRANCH,
                # Never rename: a new repository's first branch follows the owner's setting
                # (main, GitHub's default); if that branch is not main, this fails and says so.
                rename=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return defaults

    def _seed_files(
        self, name: str, args: GitHubArgs, defaults: dict[str, github.BranchDefault]
    ) -> dict[str, list[pulumi.Resource]]:
        """The central repository's first files, in new repositories only; adopted ones keep theirs."""
        seeded: dict[str, list[pulumi.Resource]] = {repo: [] for repo in args.repositories}
        if not args.adopt_existing:
            central = args.central_repository
            seeded[central] = [
                self._seed(name, central, "argocd/apps/README.md", seed_file("apps-README.md", args.owner), defaults),
                self._seed(
                    name, central, ".github/workflows/release.yaml", seed_file("release.yaml", args.owner), defaults
                ),
            ]
        return seeded

    def _deploy_keys(self, name: str, args: GitHubArgs) -> dict[str, pulumi.Output[str]]:
        """A read-only deploy key on each repository Argo CD reads; returns the private halves."""
        child = pulumi.ResourceOptions(parent=self)
        deploy_keys: dict[str, pulumi.Output[str]] = {}
        for repo in args.deploy_key_repositories:
            key = tls.PrivateKey(f"{name}-{repo}-deploy-key", algorithm="ED25519", opts=child)
            github.RepositoryDeployKey(
                f"{name}-{repo}-deploy-key",
                repository=self.repositories[repo].name,
                title="argocd (read-only, managed by spitikos-infra)",
                key=key.public_key_openssh,
                read_only=True,
                opts=child,
            )
            deploy_keys[repo] = pulumi.Output.secret(key.private_key_openssh)
        return deploy_keys

    def _webhooks(self, name: str, args: GitHubArgs) -> None:
        for hook in args.webhooks:
            github.RepositoryWebhook(
                f"{name}-{hook.repository}-webhook",
                repository=self.repositories[hook.repository].name,
                events=["push"],
                active=True,
                configuration=github.RepositoryWebhookConfigurationArgs(
                    url=hook.url,
                    content_type="json",
                    insecure_ssl=False,
                    secret=pulumi.Output.secret(hook.secret),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _release_secrets(self, name: str, args: GitHubArgs) -> None:
        """GHA_PAT in each application repository's `release` environment, never repository-wide.

        A repository-level secret is readable by a workflow on any branch; an environment secret
        only by a job that names the environment and passes its branch policy (main alone).
        """
        for repo in args.application_repositories:
            release = self._release_environment(name, repo)
            self._environment_secret(name, repo, release, "GHA_PAT", args.release_token)

    def _release_environment(
        self, name: str, repo: str, environment_name: str = RELEASE_ENVIRONMENT
    ) -> github.RepositoryEnvironmentDeploymentPolicy:
        """An Actions environment of `repo` (`release` unless named), which only the default
        branch may deploy to.

        Returns its branch policy: a secret that names the policy's environment is created
        after the policy, so no job on another branch can ever read it.
        """
        environment = github.RepositoryEnvironment(
            f"{name}-{repo}-{environment_name}-environment",
            repository=self.repositories[repo].name,
            environment=environment_name,
            # Only the branches a deployment policy names (below: main) may deploy.
            deployment_branch_policy=github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
                protected_branches=False, custom_branch_policies=True
            ),
            # Repository admins go through the branch policy too (they can still edit it).
            can_admins_bypass=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return github.RepositoryEnvironmentDeploymentPolicy(
            f"{name}-{repo}-{environment_name}-environment-main",
            repository=self.repositories[repo].name,
            environment=environment.environment,
            branch_pattern=DEFAULT_BRANCH,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _environment_secret(
        self,
        name: str,
        repo: str,
        environment: github.RepositoryEnvironmentDeploymentPolicy,
        secret_name: str,
        value: pulumi.Input[str],
    ) -> github.ActionsEnvironmentSecret:
        """An Actions secret that only jobs in `environment` (of `repo`), on main, can read."""
        return github.ActionsEnvironmentSecret(
            f"{name}-{repo}-{secret_name.lower().replace('_', '-')}",
            repository=self.repositories[repo].name,
            environment=environment.environment,
            secret_name=secret_name,
            value=pulumi.Output.secret(value),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _ci_secrets(self, name: str, ci: CiSecretsArgs) -> None:
        """CI's secrets, each in its environment only: a job reads them only when it names that
        environment and passes its branch rule (main alone for the deploy's and drift's)."""
        for environment, secrets in ci.environments.items():
            for secret_name, value in secrets.items():
                github.ActionsEnvironmentSecret(
                    f"{name}-{ci.repository}-{environment}-{secret_name.lower().replace('_', '-')}",
                    repository=ci.repository,
                    environment=environment,
                    secret_name=secret_name,
                    value=pulumi.Output.secret(value),
                    opts=pulumi.ResourceOptions(parent=self),
                )

    def _docs_sync(self, name: str, sync: DocsSyncArgs) -> None:
        """The URL as a repository variable; the token only in the `sync` environment, which only
        main may use: a workflow pushed to another branch cannot read it."""
        github.ActionsVariable(
            f"{name}-{sync.repository}-sync-url",
            repository=self.repositories[sync.repository].name,
            variable_name=DOCS_SYNC_URL_VARIABLE,
            value=sync.url,
            opts=pulumi.ResourceOptions(parent=self),
        )
        main = self._release_environment(name, sync.repository, DOCS_SYNC_ENVIRONMENT)
        self._environment_secret(name, sync.repository, main, DOCS_SYNC_TOKEN, sync.token)

    def _repository(self, name: str, repo: str, args: GitHubArgs) -> github.Repository:
        if args.adopt_existing:
            # Adopted: the program manages that it exists (protected), its keys, hooks, rules
            # and secrets, not the settings its owner chose.
            repository = github.Repository(
                f"{name}-{repo}",
                name=repo,
                # Never deleted, even unprotected: `archiveOnDestroy` cannot be declared (it would fail
                # the import), so a destroy only makes Pulumi forget the repository.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=True,
                    retain_on_delete=True,
                    import_=repo,
                    ignore_changes=ADOPTED_REPOSITORY_KEEPS,
                ),
            )
        else:
            repository = self._new_repository(name, repo, args)
        github.RepositoryVulnerabilityAlerts(
            f"{name}-{repo}-vulnerability-alerts",
            repository=repository.name,
            enabled=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return repository

    def _new_repository(self, name: str, repo: str, args: GitHubArgs) -> github.Repository:
        public = args.visibility == "public"
        return github.Repository(
            f"{name}-{repo}",
            name=repo,
            description=f"spitikos: {repo} (managed by spitikos-infra)",
            visibility=args.visibility,
            auto_init=True,
            has_issues=True,
            has_wiki=False,
            has_projects=False,
            allow_merge_commit=False,
            allow_squash_merge=True,
            allow_rebase_merge=True,
            delete_branch_on_merge=True,
            archive_on_destroy=True,
            # Secret scanning is free on public repositories only.
            security_and_analysis=(
                github.RepositorySecurityAndAnalysisArgs(
                    secret_scanning=github.RepositorySecurityAndAnalysisSecretScanningArgs(status="enabled"),
                    secret_scanning_push_protection=github.RepositorySecurityAndAnalysisSecretScanningPushProtectionArgs(
                        status="enabled"
                    ),
                )
                if public
                else None
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )

    def _ruleset(self, name: str, repo: str, args: GitHubArgs, after: list[pulumi.Resource]) -> None:
        # The release workflow pushes image bumps straight to charts, so reviews are not required there.
        reviews = args.required_reviews > 0 and repo != args.charts_repository
        rules = github.RepositoryRulesetRulesArgs(
            deletion=True,
            non_fast_forward=True,
            pull_request=github.RepositoryRulesetRulesPullRequestArgs(
                required_approving_review_count=args.required_reviews,
                dismiss_stale_reviews_on_push=True,
                required_review_thread_resolution=True,
            )
            if reviews
            else None,
        )
        github.RepositoryRuleset(
            f"{name}-{repo}-main-ruleset",
            name="protect-main",
            repository=self.repositories[repo].name,
            target="branch",
            enforcement="active",
            conditions=github.RepositoryRulesetConditionsArgs(
                ref_name=github.RepositoryRulesetConditionsRefNameArgs(includes=["~DEFAULT_BRANCH"], excludes=[])
            ),
            rules=rules,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    def _seed(
        self, name: str, repo: str, path: str, content: str, defaults: dict[str, github.BranchDefault]
    ) -> github.RepositoryFile:
        """A file created once, then Git's: later edits in the repository are never reverted."""
        return github.RepositoryFile(
            f"{name}-{repo}-{path.replace('/', '-').replace('.', '-').strip('-')}",
            repository=self.repositories[repo].name,
            branch=DEFAULT_BRANCH,
            file=path,
            content=content,
            commit_message=f"Seed {path} (spitikos-infra)",
            overwrite_on_create=False,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[defaults[repo]],
                ignore_changes=["content", "commitMessage"],
                retain_on_delete=True,
            ),
        )
