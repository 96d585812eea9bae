"""docs/security.md, the threat model, lists every secret the program and CI hold, and no other."""

from __future__ import annotations

import re

from conftest import ROOT

DOC = (ROOT / "docs" / "security.md").read_text()
WORKFLOW_FILES = [*ROOT.glob(".github/workflows/*.yaml"), ROOT / "components" / "seed" / "release.yaml"]
# Types whose resources make a new secret value (a RandomUuid makes no secret: it has no secret output).
GENERATORS = ("random:", "tls:", "cloudflare:index/accountToken:", "cloudflare:index/zeroTrustAccessServiceToken:")


def table_rows(section: str) -> list[list[str]]:
    body = DOC.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[1:]]  # past the header


def listed() -> set[str]:
    """The names in the secrets table's first column."""
    return {name for row in table_rows("Secrets") for name in re.findall(r"`([^`]+)`", row[0])}


def secret_settings() -> set[str]:
    """Every key Pulumi.yaml declares secret, as the program reads them (spitikos/stack.py)."""
    from spitikos.stack import secret_keys

    return {key.split(":", 1)[1] for key in secret_keys()}


def workflow_secrets() -> set[str]:
    found = (re.findall(r"(?<![.\w])secrets\.(\w+)", path.read_text()) for path in WORKFLOW_FILES)
    return {name for names in found for name in names}


def generated(*recordings) -> set[str]:
    """Each resource that makes a secret (a password, a key, the kubeconfig), named as the table
    names it: without the stack's prefix, a repository's name as <repo>."""
    names = set()
    for recording in recordings:
        repos = {r.values["name"] for r in recording.of_type("github:index/repository:Repository")}
        for reg in recording.all():
            makes_secret = reg.type.startswith(GENERATORS) or "stdout" in reg.additional_secret_outputs
            if makes_secret and reg.additional_secret_outputs:
                name = reg.name.removeprefix("spitikos-")
                for repo in repos:
                    name = name.replace(f"-{repo}-", "-<repo>-")
                names.add(name)
    return names


def test_every_secret_setting_is_listed():
    assert secret_settings() >= {"sshPrivateKey", "cloudflareApiToken", "githubToken", "ghaPat"}
    assert secret_settings() - listed() == set()


def test_every_secret_a_workflow_reads_is_listed():
    assert "PULUMI_CONFIG_PASSPHRASE" in workflow_secrets()
    assert workflow_secrets() - listed() == set()


def test_every_secret_the_program_generates_is_listed(stack, fresh, ha):
    made = generated(stack, fresh, ha)
    assert {"k3s-agent-token", "argocd-admin-password", "github-<repo>-deploy-key", "k3s-server-kubeconfig"} <= made
    assert made - listed() == set()
    # The tunnel token is read from Cloudflare, not generated: it has its own words in the table.
    if any(i.token.endswith("getZeroTrustTunnelCloudflaredToken") for i in stack.invokes):
        assert "tunnel token" in next(row[0] for row in table_rows("Secrets") if "`tunnel-secret`" in row[0])


def test_the_table_lists_nothing_that_no_longer_exists(stack, fresh, ha):
    outputs = set(re.findall(r'pulumi\.export\("(\w+)"', (ROOT / "__main__.py").read_text()))
    known = secret_settings() | workflow_secrets() | generated(stack, fresh, ha) | outputs
    assert listed() - known == set()


def test_each_secret_says_where_it_lives_who_reads_it_what_it_reaches_and_what_stops_misuse():
    header = DOC.split("\n## Secrets\n", 1)[1].split("\n| ", 1)[1].split("\n", 1)[0]
    assert header == "secret | lives in | who can read it | what it reaches | what stops misuse |"
    for row in table_rows("Secrets"):
        assert len(row) == 5 and all(row), row


def test_the_sections_the_other_reviews_fill_are_there():
    for section in ("Who can push where", "Secrets", "Inside the cluster", "Residual risks"):
        assert f"\n## {section}\n" in DOC


def corpus_rows() -> dict[str, str]:
    """The attack corpus table: file (relative to tests/attacks/) -> the layer it claims stops it."""
    return {
        row[0].strip("`"): row[2].strip("*") for row in table_rows("The attack corpus") if row[0].endswith(".yaml`")
    }


def test_each_attack_the_threat_model_lists_is_a_file_refused_by_the_layer_it_names():
    """Each row is a claim; tests/test_attacks.py fails unless the file is refused by the layer its
    header names, so a row holds when it names that layer (or `open` for a file under open/)."""
    from test_attacks import ATTACKS, CORPUS, OPEN, load

    rows = corpus_rows()
    assert len(rows) >= 30
    for name, layer in rows.items():
        path = CORPUS / name
        assert path.exists(), f"docs/security.md lists {name}, which is not in tests/attacks/"
        if path in OPEN:
            assert layer == "open", f"{name} is an open finding: the table must say so"
        else:
            assert path in ATTACKS and layer == load(path).header["stopped-by"], f"{name}: the table says {layer}"
    # Every open finding is in the threat model; a new refused attack may be one file alone.
    assert {f"open/{p.name}" for p in OPEN} <= set(rows)


def test_each_path_of_issue_24_is_stopped_by_the_layer_the_threat_model_says():
    from test_attacks import ATTACKS, load

    by_number = {p.name[:2]: load(p).header["stopped-by"] for p in ATTACKS}
    paths = [row for row in table_rows("The attack corpus") if re.match(r"`\d\d`", row[1])]
    assert len(paths) == 7
    for _, files, layer in paths:
        for number in re.findall(r"`(\d\d)`", files):
            assert by_number.get(number) == layer, f"issue 24's path in {number}: {by_number.get(number)}, not {layer}"


COUNTS = {10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen"}


def test_the_admission_policies_section_counts_and_lists_every_policy_the_guard_makes():
    from components import guard

    made = {value for key, value in vars(guard).items() if key.endswith("_POLICY")}
    section = DOC.split("### 3. Admission policies", 1)[1].split("\n### ", 1)[0]
    rows = {m.group(1) for line in section.splitlines() if (m := re.match(r"\| `([^`]+)` \|", line))}
    assert rows == made, "one row per policy: the guard's names, no other"
    always = len(made - {guard.HOST_PODS_POLICY})
    said = " ".join(section.split())
    assert f"puts {COUNTS[always]} ValidatingAdmissionPolicies in force" in said
    assert f"{COUNTS[always + 1]} where `privilegedNamespaces` lists a namespace" in said
