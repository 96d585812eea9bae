"""The README and the pages it leads to, as a newcomer follows them: in order, and agreeing with each other."""

from __future__ import annotations

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()
RUNBOOK = (ROOT / "docs" / "operations.md").read_text()
PLATFORM = (ROOT / "docs" / "platform.md").read_text()
# A `pulumi` command the reader runs: a line of a code block that starts with it (or runs it after `&&`).
PULUMI_COMMAND = re.compile(r"^(?:\s*|.*&& \(?)pulumi [a-z]", re.M)


def first_pulumi_command(text: str, start: int = 0) -> int:
    for block in re.finditer(r"```\w*\n(.*?)```", text[start:], re.S):
        if PULUMI_COMMAND.search(block.group(1)):
            return start + block.start()
    raise AssertionError("no pulumi command in a code block")


def _first_run() -> str:
    start = README.index("## First run")
    return README[start : README.index("\n## ", start + 1)]


def test_the_cli_is_installed_and_put_on_path_before_the_first_pulumi_command():
    first_command = first_pulumi_command(README)
    install = README.find("\n   make cli")
    on_path = README.find('export PATH="$PWD/.pulumi-cli/bin:$PATH"')
    assert 0 <= install < on_path < first_command, README[first_command : first_command + 200]
    # ... inside First run, before the step that first needs it (the passphrase and `pulumi config`).
    steps = _first_run()
    assert steps.index("make cli") < steps.index("PULUMI_CONFIG_PASSPHRASE") < steps.index("[Settings]")


def test_the_runbook_says_how_to_get_the_cli_and_which_stack_before_any_command():
    first_command = first_pulumi_command(RUNBOOK)
    assert RUNBOOK.index("make cli") < first_command
    assert RUNBOOK.index("export STACK=") < RUNBOOK.index('pulumi stack select "$STACK"') < first_command + 80


def test_the_runbook_names_no_stack_of_its_own_and_the_same_ssh_key_as_the_readme():
    assert "--stack pi5" not in RUNBOOK and "`urn:pulumi:pi5::" not in RUNBOOK
    # Pasted as written, the stack is the reader's, as in the README: never the organization's.
    assert re.findall(r"^export STACK=(\S+)", RUNBOOK, re.M) == re.findall(r"export STACK=(\S+)", README) == ["lab"]
    assert "stack rm pi5" not in RUNBOOK
    assert "~/.ssh/spitikos" in README and "~/.ssh/spitikos" in RUNBOOK
    assert "id_ed25519" not in README + RUNBOOK


def test_umask_never_leaks_into_the_readers_shell():
    """`umask 077` typed at a prompt stays for the whole session: only ever in a subshell."""
    for name, text in (("README.md", README), ("docs/operations.md", RUNBOOK)):
        for line in text.splitlines():
            if "umask 077" in line:
                assert re.search(r"\(umask 077 && [^)]+\)", line), f"{name}: {line.strip()}"


# What POSIX sh (dash, Debian's and Ubuntu's `sh`) refuses: `read -s`, here-strings, `[[`,
# process substitution.
BASH_ONLY = re.compile(r"\bread -\w*s|<<<|\[\[ |<\(")


def test_bash_only_lines_are_in_bash_blocks():
    """A block a reader runs with `sh` must not need bash."""
    for page in [ROOT / "README.md", *DOCS]:
        for lang, body in re.findall(r"```(\w*)\n(.*?)```", page.read_text(), re.S):
            if lang != "bash" and (found := BASH_ONLY.search(body)):
                raise AssertionError(f"{page.relative_to(ROOT)}: a ```{lang} block uses {found.group()!r}")


def test_the_settings_block_creates_the_readers_stack_not_the_maintainers():
    settings = _first_run()[_first_run().index("**Set the settings**") :]
    assert 'pulumi stack select --create "$STACK"' in settings
    assert settings.index("export STACK=") < settings.index('cp Pulumi.example.yaml "Pulumi.$STACK.yaml"')
    assert "pulumi stack select --create pi5" not in README


def test_the_platform_pages_footprint_figures_are_the_programs(stack):
    """Figures in prose go stale: these are derived from what the program registers."""
    from spitikos import plan as offline

    plan = offline.from_recording(stack)
    requests = plan.total_footprint().memory_requests_mi
    sentence = PLATFORM[PLATFORM.index("Every container has CPU and memory requests and limits.") :][:400]
    assert f"The platform requests {requests:.0f} MiB" in sentence
    assert f"{plan.left_for_applications_mi:.0f} MiB of a 4 GB Pi 5 stay free" in sentence
    from components.footprint import APPLICATION_RESERVE_MI, K3S_SYSTEM_MI

    assert f"estimated {K3S_SYSTEM_MI} MiB for k3s" in sentence and f"{APPLICATION_RESERVE_MI} MiB reserve" in sentence
    assert plan.node_memory_mi == 4096 and plan.total_footprint().cpu_limits_millis > 4000
    backups = " ".join((ROOT / "docs" / "backups.md").read_text().split())
    assert f"the platform's requests are then {requests:.0f} MiB of the 1024 MiB budget" in backups


# --- the README is a front door: short, and every page reachable from it ---------------------

DOCS = sorted((ROOT / "docs").rglob("*.md"))
# A Markdown link to a file of this repository: [text](path) or [text](path#anchor), not a URL.
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s]*)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces made hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return {_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def _links(path):
    """Each (target file, anchor) a page links to, resolved against the page's folder."""
    for target in LINK.findall(re.sub(r"```.*?```", "", path.read_text(), flags=re.S)):
        file, _, anchor = target.partition("#")
        yield ((path.parent / file).resolve() if file else path), anchor


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    assert len(README.splitlines()) <= 250
    # Its first lines give the two commands a newcomer needs.
    head = "\n".join(README.splitlines()[:6])
    assert "`make up STACK=" in head and "`make test`" in head


def test_every_relative_link_reaches_a_file_and_heading_that_exist():
    for page in [ROOT / "README.md", *DOCS]:
        for target, anchor in _links(page):
            where = f"{page.relative_to(ROOT)} links {target.relative_to(ROOT)}#{anchor}"
            assert target.is_file(), f"{where}: no such file"
            if anchor and target.suffix == ".md":
                assert anchor in _anchors(target.read_text()), f"{where}: no such heading"


def test_every_docs_page_is_reachable_from_the_readme():
    seen, todo = set(), [(ROOT / "README.md").resolve()]
    while todo:
        page = todo.pop()
        if page in seen or page.suffix != ".md":
            continue
        seen.add(page)
        todo.extend(target for target, _ in _links(page) if target.is_file())
    unreachable = [str(p.relative_to(ROOT)) for p in DOCS if p.resolve() not in seen]
    # A docs/_pending-<branch>.md is text waiting to move into the page its first line names.
    assert unreachable == [], "link each from the README or a page it links (move a _pending-*.md into its page)"


def test_the_first_application_is_listed_in_app_namespaces_before_its_chart_is_pushed():
    """Each Application is applied as its namespace's deployer: an unlisted namespace has none."""
    step = _first_run()[_first_run().index("**Add the first application**") :]
    assert step.index("`appNamespaces`") < step.index("make up") < step.index("push")
    from components.settings import Settings

    assert Settings.__dataclass_fields__["app_namespaces"].default == (("api", ""),), "the default the step names"
    assert "(default `api` alone" in " ".join(step.split())


def test_the_contract_names_every_namespace_an_application_may_not_use():
    from components import namespaces, settings

    row = next(line for line in PLATFORM.splitlines() if line.startswith("| namespace |"))
    refused = [*namespaces.PLATFORM, settings.KUBERNETES_DEFAULT_NAMESPACE]
    assert all(f"`{ns}`" in row for ns in refused), row


def test_the_readmes_decision_records_are_every_record():
    listed = set(re.findall(r"\(docs/decisions/([^)#]+\.md)\)", README.split("Decision records:", 1)[1]))
    assert listed == {p.name for p in (ROOT / "docs" / "decisions").glob("*.md")}


def test_the_own_cluster_recipe_is_a_complete_stack_file_the_settings_accept(tmp_path):
    """docs/own-cluster.md's stack file, read as `pulumi up` would with the kubeconfig set: accepted whole."""
    import pulumi

    from components.settings import load_settings
    from spitikos.stack import offline_config

    recipe = (ROOT / "docs" / "own-cluster.md").read_text()
    written = re.search(r"cat > \"Pulumi\.\$STACK\.yaml\" <<'YAML'\n(.*?)\nYAML\n", recipe, re.S)
    assert written, "the recipe writes the stack file with a quoted heredoc"
    assert recipe.index("<<'YAML'") < recipe.index("pulumi config set --secret kubeconfig")
    (tmp_path / "Pulumi.yaml").symlink_to(ROOT / "Pulumi.yaml")
    (tmp_path / "Pulumi.lab.yaml").write_text(written.group(1) + "\n")
    config, secret_keys, filled = offline_config("lab", tmp_path)
    assert filled == ["spitikos:kubeconfig"], "the only value set outside the file is the kubeconfig"
    pulumi.runtime.set_all_config(config, secret_keys)
    settings = load_settings()
    assert settings.domain == "example.org"
    assert settings.parts.existing_cluster and not settings.parts.cloudflare and not settings.parts.github
    assert settings.parts.root_repository_url == "https://github.com/OWNER/REPO.git"


def test_every_git_apply_names_patches_of_this_checkout_one_by_one():
    """A glob (`"$repo"-*.patch`) took every patch of a repository in name order, the Gateway's
    before the one it follows: each `git apply` names its patch, or loops over named ones."""
    for page in [ROOT / "README.md", *DOCS]:
        text = page.read_text()
        for applied in re.finditer(r"git apply (?:--3way )?([^\s)]+)", text):
            arg = applied.group(1).replace('"', "")
            where = f"{page.relative_to(ROOT)}: git apply {arg}"
            assert "*" not in arg and arg.startswith("$INFRA/docs/migration/"), where
            loops = re.findall(r"for (\w+) in ([^;\n]+); do", text[: applied.start()])
            names = (
                [arg.replace(f"${loops[-1][0]}", value) for value in loops[-1][1].split()] if "$patch" in arg else [arg]
            )
            for name in names:
                assert (ROOT / name.removeprefix("$INFRA/")).is_file(), f"{where}: no {name}"


def test_every_clone_goes_to_a_fresh_folder_not_into_this_checkout():
    """Run from a clone of this repository, `git clone .../charts.git` would land in its own `charts/`."""
    for page in [ROOT / "README.md", *DOCS]:
        for url, dest in re.findall(r"git clone (\S+)(?: +([^\s&]+))?", page.read_text()):
            name = f"{page.relative_to(ROOT)}: git clone {url}"
            assert dest and dest.startswith('"$work/'), f"{name} clones into the working folder"
            assert re.search(r"^\s*work=\$\(mktemp -d\)", page.read_text(), re.M), f"{name}: $work is never made"


def test_the_migration_says_what_pi5_backs_up():
    import yaml

    volumes = yaml.safe_load((ROOT / "Pulumi.pi5.yaml").read_text())["config"]["spitikos:backupVolumes"]
    migration = (ROOT / "docs" / "migration" / "README.md").read_text()
    vault = migration[migration.index("**Vault**") :].split("\n1", 1)[0]
    assert (
        "vault/data-vault-0" in volumes and "`vault/data-vault-0`" in vault and "does not manage but backs up" in vault
    )
    assert "nor backs up" not in migration


def test_the_readers_commands_name_the_readers_stack_never_pi5():
    """pi5 is the organization's stack: a newcomer pasting a block must deploy or plan their own.
    (docs/ci.md and the migration are about pi5 itself.)"""
    pages = [ROOT / "README.md", *(ROOT / "docs" / f"{n}.md" for n in ("settings", "platform", "backups"))]
    pages += [ROOT / "docs" / "own-cluster.md", ROOT / "docs" / "development.md"]
    for page in pages:
        for lang, body in re.findall(r"```(\w*)\n(.*?)```", page.read_text(), re.S):
            if lang not in ("sh", "bash"):
                continue
            assert "pi5" not in body, f"{page.name}: {body[:80]}"
            for command in re.findall(r"\bmake (?:up|plan|render)\b[^\n#]*", body):
                assert 'STACK="$STACK"' in command, f"{page.name}: `{command.strip()}` deploys the default stack"


def test_the_first_runs_node_prerequisites_are_the_ones_the_preflight_checks():
    from components.k3s import MIN_FREE_DISK_KIB, MIN_MEMORY_KIB

    step = _first_run()[: _first_run().index("2. **Create the credentials**")]
    gib = 1024 * 1024
    assert f"≥ {MIN_MEMORY_KIB // gib} GiB RAM, ≥ {MIN_FREE_DISK_KIB // gib} GiB free" in step
    assert "cgroup_enable=memory cgroup_memory=1" in step


def test_the_runbooks_commands_work_as_written_for_the_readers_stack_and_node():
    """It once ran `python -m spitikos` on whatever `python` was on PATH (ModuleNotFoundError, and an
    empty restore script sent over ssh), and ssh'd to pi5's address while using `$STACK` elsewhere."""
    import yaml

    pi5 = yaml.safe_load((ROOT / "Pulumi.pi5.yaml").read_text())["config"]
    assert pi5["spitikos:nodeHost"] not in RUNBOOK, "pi5's address: the reader's is $NODE_HOST"
    blocks = "\n".join(re.findall(r"```\w*\n(.*?)```", RUNBOOK, re.S))
    assert "python -m" not in blocks
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    makes = re.findall(r"^\s*make (\S+)(.*)$", blocks, re.M)
    assert {"etcd-restore-script", "restore-volume"} <= {target for target, _ in makes}
    for target, rest in makes:
        assert target in targets and 'STACK="$STACK"' in rest, (target, rest)
    assert "OUT=" in dict(makes)["etcd-restore-script"] and "SNAPSHOT=" in dict(makes)["etcd-restore-script"]
    assert re.search(r"make restore-volume [^\n]*\| kubectl apply -f -", blocks)
    # The script is sent only when it was written: never an older or missing one.
    assert re.search(r'OUT="([^"]+)" &&\n\s+ssh [^\n]*"\$\(cat "\1"\)"', blocks)
    for line in re.findall(r"^\s*ssh .*$", blocks, re.M):
        assert '-p "$NODE_PORT" "$NODE"' in line, line
    setup = RUNBOOK[: RUNBOOK.index("```", RUNBOOK.index("export STACK=")) + 3]
    assert all(f"{name}=" in setup for name in ("NODE_HOST", "NODE", "NODE_PORT"))
