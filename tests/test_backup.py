"""Backups to R2, embedded etcd with snapshots, and three servers: the `ha` variant of pi5."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess

import pytest
from test_k3s import _stub_bin
from test_settings import load

from components.charts import chart_name
from components.k3s import ETCD_SNAPSHOT_CONFIG, SERVER_TOKEN_FILE, SERVER_TOKEN_PATH, TOKEN_FILE
from components.r2 import ETCD_PREFIX, OBJECT_PERMISSION_GROUPS, bucket_resource
from components.settings import SettingsError
from spitikos.engine import is_secret, mock_permission_group_id, plain
from spitikos.stack import offline_config

COMMAND = "command:remote:Command"
TOKEN = "cloudflare:index/accountToken:AccountToken"
PERMISSION_GROUPS = "cloudflare:index/getAccountApiTokenPermissionGroups:getAccountApiTokenPermissionGroups"
ACCOUNT = offline_config("pi5")[0]["spitikos:cloudflareAccountId"]


def _dropin(ha, name="spitikos-k3s-server-etcd-snapshots"):
    return ha.one(COMMAND, name)


def _installs(ha):
    return {r.name: r for r in ha.of_type(COMMAND) if r.name.endswith("-install")}


def _exec_args(install) -> list[str]:
    return re.search(r"INSTALL_K3S_EXEC='([^']*)'", install.values["create"]).group(1).split()


def test_the_bucket_outlives_the_stack_and_the_token_reaches_its_objects_only(ha):
    bucket = ha.one("cloudflare:index/r2Bucket:R2Bucket")
    assert bucket.values["name"] == "spitikos-backups" and bucket.values["accountId"] == ACCOUNT
    assert bucket.protect and bucket.retain_on_delete, "the backups must survive `pulumi destroy`"
    token = ha.one(TOKEN)
    (policy,) = token.values["policies"]
    assert policy["effect"] == "allow"
    # Exactly R2's object read and write, looked up by name, on this one bucket: no account scope.
    assert [g["id"] for g in policy["permissionGroups"]] == [
        mock_permission_group_id(n) for n in OBJECT_PERMISSION_GROUPS
    ]
    assert (
        json.loads(policy["resources"])
        == {f"com.cloudflare.edge.r2.bucket.{ACCOUNT}_default_spitikos-backups": "*"}
        == {bucket_resource(ACCOUNT, "spitikos-backups"): "*"}
    )
    lookups = [i for i in ha.invokes if i.token == PERMISSION_GROUPS]
    assert sorted(i.args["name"] for i in lookups) == [
        "Workers%20R2%20Storage%20Bucket%20Item%20Read",
        "Workers%20R2%20Storage%20Bucket%20Item%20Write",
    ]


def test_only_etcd_snapshots_expire_never_the_volume_backups(ha):
    (rule,) = ha.one("cloudflare:index/r2BucketLifecycle:R2BucketLifecycle").values["rules"]
    assert rule["enabled"] is True
    assert rule["conditions"] == {"prefix": f"{ETCD_PREFIX}/"}, "restic's repositories are pruned by restic alone"
    assert rule["deleteObjectsTransition"]["condition"] == {"type": "Age", "maxAge": 30 * 24 * 3600}


def test_s3_credentials_derive_from_the_token_and_stay_secret_to_the_nodes_file(ha):
    token = ha.one(TOKEN)
    assert is_secret(token.state["value"]), "the provider lists the token's value as a secret output"
    value = plain(token.state["value"])
    dropin = _dropin(ha)
    assert dropin.input_is_secret("stdin")
    config = json.loads(dropin.values["stdin"])
    assert config["etcd-s3-access-key"] == token.state["id"]
    assert config["etcd-s3-secret-key"] == hashlib.sha256(value.encode()).hexdigest()
    # Neither key, nor the token, nor the server token appears in any command's text or argv.
    secrets = [value, config["etcd-s3-secret-key"], config["etcd-s3-access-key"], *ha.generated_secrets()]
    for command in ha.of_type(COMMAND):
        for field in ("create", "update", "delete"):
            text = command.values.get(field) or ""
            assert not any(s in text for s in secrets), f"{command.name}.{field} holds a secret"


def test_snapshots_are_scheduled_compressed_and_kept_locally_and_in_the_bucket(ha):
    config = json.loads(_dropin(ha).values["stdin"])
    assert config == {
        "etcd-snapshot-schedule-cron": "0 */6 * * *",
        "etcd-snapshot-retention": 8,
        "etcd-snapshot-compress": True,
        "etcd-s3": True,
        "etcd-s3-endpoint": f"{ACCOUNT}.r2.cloudflarestorage.com",
        "etcd-s3-region": "auto",
        "etcd-s3-bucket": "spitikos-backups",
        "etcd-s3-folder": ETCD_PREFIX,
        "etcd-s3-access-key": config["etcd-s3-access-key"],
        "etcd-s3-secret-key": config["etcd-s3-secret-key"],
        "etcd-s3-retention": 28,
    }
    # On every server, before its install; no S3 setting is ever a flag (flags show in `ps`).
    installs = _installs(ha)
    for server in ("server", "server-pi6", "server-pi7"):
        dropin = _dropin(ha, f"spitikos-k3s-{server}-etcd-snapshots")
        install = installs[f"spitikos-k3s-{server}-install"]
        assert dropin.urn in install.dependencies
        assert not any("etcd-s3" in a or "etcd-snapshot" in a for a in _exec_args(install))


def _node(tmp_path, active):
    """Stub sudo (runs the command against a folder standing for /etc/rancher/k3s) and systemctl."""
    etc, log = tmp_path / "etc", tmp_path / "systemctl.log"
    etc.mkdir()
    env = _stub_bin(
        tmp_path,
        {
            "sudo": f'shift; shift; sh -c "$(echo "$2" | sed "s|/etc/rancher/k3s|{etc}|g")"',
            "systemctl": f'echo "$*" >> {log}; ' + ("exit 0" if active else "exit 3"),
        },
    )

    def run(script, stdin):
        result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, input=stdin)
        restarts = log.read_text().count("restart k3s") if log.exists() else 0
        return result, restarts

    return run, etc / ETCD_SNAPSHOT_CONFIG.removeprefix("/etc/rancher/k3s/")


def test_the_dropin_reaches_the_node_on_stdin_root_only_and_restarts_k3s_once(ha, tmp_path):
    dropin = _dropin(ha)
    script, stdin = dropin.values["create"], dropin.values["stdin"]
    assert dropin.values["update"] == script and ETCD_SNAPSHOT_CONFIG in dropin.values["delete"]
    run, written = _node(tmp_path, active=True)
    result, restarts = run(script, stdin)
    assert result.returncode == 0, result.stderr
    assert written.read_text() == stdin
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert oct(written.parent.stat().st_mode & 0o777) == "0o700"
    assert restarts == 1, "k3s reads its config only when it starts"
    assert json.loads(stdin)["etcd-s3-secret-key"] not in result.stdout + result.stderr
    # The same content again: nothing to restart.
    assert run(script, stdin)[1] == 1
    # New keys: written, and k3s restarted to read them.
    assert run(script, stdin.replace('"etcd-s3-retention": 28', '"etcd-s3-retention": 29'))[1] == 2


def test_a_dropin_written_before_k3s_exists_restarts_nothing(ha, tmp_path):
    dropin = _dropin(ha)
    run, written = _node(tmp_path, active=False)
    result, restarts = run(dropin.values["create"], dropin.values["stdin"])
    assert result.returncode == 0 and written.exists() and restarts == 0


def test_three_servers_join_in_order_with_the_first_ones_critical_flags(ha):
    installs = _installs(ha)
    first, second, third = (installs[f"spitikos-k3s-server{s}-install"] for s in ("", "-pi6", "-pi7"))
    assert first.urn in ha.ancestors_closure(second.urn)
    assert second.urn in ha.ancestors_closure(third.urn), "etcd adds one member at a time"
    assert _dropin(ha).urn in first.dependencies
    first_args, second_args = _exec_args(first), _exec_args(second)
    assert "--cluster-init" in first_args and "--cluster-init" not in second_args
    assert "--server=https://10.0.0.200:6443" in second_args
    assert f"--token-file={SERVER_TOKEN_FILE}" in second_args
    critical = [a for a in first_args if a.startswith(("--disable", "--secrets-encryption", "--kube-apiserver-arg"))]
    assert critical and all(a in second_args and a in _exec_args(third) for a in critical)
    assert "--tls-san=10.0.0.206" in second_args and "--tls-san=10.0.0.200" not in second_args
    # The joining servers get the server token read back from the first, on stdin, never the agent token.
    read = ha.one(COMMAND, "spitikos-k3s-server-token")
    assert read.values["create"] == f"sudo -n cat {SERVER_TOKEN_PATH}" and "stdout" in read.additional_secret_outputs
    for joining in (second, third):
        assert joining.input_is_secret("stdin") and joining.values["stdin"] == plain(read.state["stdout"])
        assert f"cat > {SERVER_TOKEN_FILE}" in joining.values["create"] and TOKEN_FILE not in joining.values["create"]
        assert "sudo -n sh -c 'umask 077" in joining.values["create"]


def test_every_server_has_its_host_key_pinned_and_the_network_policies_admit_three_nodes(ha):
    for name in ("spitikos-k3s-server-pi6-install", "spitikos-k3s-server-pi7-install"):
        assert ha.one(COMMAND, name).values["connection"]["hostKey"]
    # pi6 has no key in the settings: read once on first contact, like an agent's.
    assert ha.one("command:local:Command", "spitikos-k3s-server-pi6-host-key")
    for name in ("spitikos-keda-network-policy", "spitikos-edge-nginx-network-policy"):
        spec = ha.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", name).values["spec"]
        cidrs = {p["ipBlock"]["cidr"] for rule in spec["ingress"] for p in rule.get("from", []) if "ipBlock" in p}
        assert cidrs >= {"10.42.0.0/31", "10.42.1.0/31", "10.42.2.0/31"}, f"{name}: every server reaches it"


BAD = [
    (
        {"servers": json.dumps(["10.0.0.206"]), "datastore": "etcd", "etcdOnSsd": "true"},
        "spitikos:servers: 2 servers in all (nodeHost and 1 listed) is not 1 or 3: "
        "etcd keeps quorum with an odd number",
    ),
    (
        {"servers": json.dumps(["10.0.0.206", "10.0.0.207"])},
        "spitikos:servers: more than one server needs `datastore: etcd` (SQLite lives on one node)",
    ),
    (
        {"datastore": "etcd"},
        "spitikos:datastore: etcd needs an SSD, not an SD card (k3s's requirement): set etcdOnSsd to true"
        " once every server boots from an SSD",
    ),
    ({"datastore": "postgres"}, "spitikos:datastore: 'postgres' is not 'sqlite' or 'etcd'"),
    ({"backupBucket": "b", "backupVolumes": '["argocd/redis"]'}, "spitikos:backupBucket: 'b' is not an R2 bucket"),
    (
        {"backupBucket": "spitikos-backups", "backupVolumes": '["redis/data-redis-0"]'},
        "spitikos:backupVolumes: 'redis/data-redis-0' is in the platform's namespace 'redis'",
    ),
    (
        {"backupBucket": "spitikos-backups", "backupVolumes": '["kube-system/x"]'},
        "spitikos:backupVolumes: 'kube-system/x' is in the platform's namespace",
    ),
    ({"backupBucket": None}, "spitikos:backupVolumes: needs `backupBucket`"),
    ({"backupVolumes": '["data-vault-0"]'}, "spitikos:backupVolumes: 'data-vault-0' is not '<namespace>/<claim>'"),
    (
        {"servers": '["a=10.0.0.206", "b=10.0.0.206"]', "datastore": "etcd", "etcdOnSsd": "true"},
        "spitikos:servers: '10.0.0.206' is listed twice (servers differ from each other, nodeHost and agents)",
    ),
    (
        {"servers": '["10.0.0.200", "10.0.0.207"]', "datastore": "etcd", "etcdOnSsd": "true"},
        "spitikos:servers: '10.0.0.200' is listed twice",
    ),
    (
        {"servers": '["a=10.0.0.206", "a=10.0.0.207"]', "datastore": "etcd", "etcdOnSsd": "true"},
        "spitikos:servers: the node name 'a' is used twice; give each server its own `name=`",
    ),
    (
        {"servers": '["server=10.0.0.206", "10.0.0.207"]', "datastore": "etcd", "etcdOnSsd": "true"},
        "spitikos:servers: the node name 'server' is used twice; give each server its own `name=`",
    ),
    (
        {"servers": '["pi@@x", "10.0.0.207"]', "datastore": "etcd", "etcdOnSsd": "true"},
        "spitikos:servers: 'pi@@x' is not host, user@host, user@host:port",
    ),
    (
        {"backupVolumes": '["vault/data-vault-0", "vault/data-vault-0"]'},
        "spitikos:backupVolumes: 'vault/data-vault-0' is listed twice",
    ),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[m.split(":")[1] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_backup_settings_are_one_line_each_naming_the_key(overrides, message):
    with pytest.raises(SettingsError) as raised:
        load(overrides)
    (problem,) = [p for p in raised.value.problems if p.startswith(message)]
    assert "\n" not in problem


# --- volume backups (pi5 backs up Vault's data) ---------------------------------------------

SOURCE = "kubernetes:volsync.backube/v1alpha1:ReplicationSource"
# volsync 0.16.0, helm/volsync/templates/volsync.backube_replicationsources.yaml: spec.restic's fields.
RESTIC_SOURCE_FIELDS = {
    "accessModes", "cacheAccessModes", "cacheCapacity", "cacheStorageClassName", "capacity", "copyMethod",
    "customCA", "moverAffinity", "moverPodLabels", "moverResources", "moverSecurityContext",
    "moverServiceAccount", "moverVolumes", "pruneIntervalDays", "repository", "retain", "storageClassName",
    "unlock", "volumeSnapshotClassName",
}  # fmt: skip


def test_vaults_claim_is_backed_up_on_a_schedule_with_retention_by_a_restricted_mover(stack):
    source = stack.one(SOURCE).values
    assert source["metadata"]["namespace"] == "vault"
    spec = source["spec"]
    assert spec["sourcePVC"] == "data-vault-0" and spec["trigger"] == {"schedule": "15 */6 * * *"}
    restic = spec["restic"]
    assert set(restic) <= RESTIC_SOURCE_FIELDS
    assert restic["copyMethod"] == "Direct", "local-path volumes have no CSI snapshots"
    assert restic["retain"] == {"hourly": 4, "daily": 7, "weekly": 4} and restic["pruneIntervalDays"] == 7
    # Pod Security `restricted`, as Vault's own pod runs (chart 0.30.1): it reads Vault's files as their owner.
    assert restic["moverSecurityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 100,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert restic["moverResources"]["limits"]["memory"]
    # Never privileged: VolSync elevates a mover only for a namespace annotated so.
    for reg in stack.all():
        assert "volsync.backube/privileged-movers" not in json.dumps(reg.values), reg.name


def test_each_claim_has_its_own_repository_and_password_secret_from_birth(stack):
    secret = stack.one("kubernetes:core/v1:Secret", "spitikos-volume-backups-vault-data-vault-0-restic")
    data = secret.values["stringData"]
    assert secret.values["metadata"] == {
        **secret.values["metadata"],
        "name": "data-vault-0-restic",
        "namespace": "vault",
    }
    assert stack.one(SOURCE).values["spec"]["restic"]["repository"] == "data-vault-0-restic"
    assert (
        data["RESTIC_REPOSITORY"]
        == f"s3:https://{ACCOUNT}.r2.cloudflarestorage.com/spitikos-backups/volumes/vault/data-vault-0"
    )
    for key in ("RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert secret.input_is_secret("stringData", key), key
    token = stack.one(TOKEN)
    assert data["AWS_ACCESS_KEY_ID"] == token.state["id"]
    assert data["AWS_SECRET_ACCESS_KEY"] == hashlib.sha256(plain(token.state["value"]).encode()).hexdigest()
    password = stack.one("random:index/randomPassword:RandomPassword", suffix="data-vault-0-restic-password")
    assert password.protect, "losing the password loses the backups"


def test_volsync_starts_after_the_snapshot_crd_sized_for_the_pi_and_leaves_vaults_namespace_alone(stack):
    release = stack.one("kubernetes:helm.sh/v3:Release", "spitikos-volume-backups-volsync").values
    assert (chart_name(release), release["version"]) == ("volsync", "0.16.0")
    assert release["values"]["resources"]["requests"] == {"cpu": "20m", "memory": "40Mi"}
    crd = stack.one("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")
    assert crd.values["metadata"]["name"] == "volumesnapshots.snapshot.storage.k8s.io" and crd.retain_on_delete
    assert crd.urn in stack.one("kubernetes:helm.sh/v3:Release", "spitikos-volume-backups-volsync").dependencies
    # Vault's namespace is Argo CD's: a patch that only makes sure it exists, with no Pod Security label.
    patch = stack.one("kubernetes:core/v1:NamespacePatch", "spitikos-volume-backups-vault-namespace").values
    assert patch["metadata"] == {"name": "vault", "labels": {"spitikos.dev/volume-backups": "true"}}


def test_a_restore_writes_the_claim_then_fills_it_from_the_latest_backup():
    import kubernetes_validate

    from components.backup import RESTORE_TRIGGER, Volume, restore_manifests

    claim, destination = restore_manifests(Volume("vault", "data-vault-0"), "1Gi")
    kubernetes_validate.validate(claim, desired_version="1.35", strict=True)
    assert claim["metadata"] == {"name": "data-vault-0", "namespace": "vault"}
    assert "dataSourceRef" not in claim["spec"], "VolSync's populator needs VolumeSnapshots, which local-path lacks"
    restic = destination["spec"]["restic"]
    assert destination["spec"]["trigger"] == {"manual": RESTORE_TRIGGER}, "once, not on a schedule"
    assert (restic["destinationPVC"], restic["copyMethod"], restic["repository"]) == (
        "data-vault-0",
        "Direct",
        "data-vault-0-restic",
    )
    assert restic["moverSecurityContext"]["runAsUser"] == 100


def test_the_etcd_restore_takes_the_token_on_stdin_and_resets_from_the_bucket(tmp_path):
    from components.k3s import etcd_restore_script

    log, tokens, seen = tmp_path / "calls.log", tmp_path / "tokens", tmp_path / "seen"
    tokens.mkdir()
    env = _stub_bin(
        tmp_path,
        {
            # sudo runs its command from PATH (the stubs); mktemp makes the token file in the test's folder.
            "sudo": f'shift; echo "sudo $*" >> {log}; exec env "$@"',
            "mktemp": f'umask 077; f={tokens}/restore-token.$$; : > "$f"; echo "$f"',
            "test": "exit 0",
            "systemctl": f'echo "systemctl $*" >> {log}',
            "k3s": f'echo "k3s $*" >> {log}; for a; do case $a in --token-file=*) cp "${{a#*=}}" {seen}; esac; done',
            "timeout": 'shift; "$@"',
        },
    )
    script = etcd_restore_script("etcd-snapshot-pi5-1764561600.zip")
    assert "TOKEN" not in script
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, input="K10abc::server:TOKEN")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    k3s = next(c for c in calls if c.startswith("k3s "))
    assert "--cluster-reset" in k3s and "--etcd-s3" in k3s
    assert "--cluster-reset-restore-path=etcd-snapshot-pi5-1764561600.zip" in k3s and "TOKEN" not in k3s
    assert seen.read_text() == "K10abc::server:TOKEN", "the original cluster's token reaches k3s"
    order = [c for c in calls if c.startswith(("systemctl", "k3s"))]
    assert order == ["systemctl stop k3s", k3s, "systemctl start k3s"]
    assert list(tokens.iterdir()) == [], "the token file is removed"
    with pytest.raises(ValueError):
        etcd_restore_script("x; rm -rf /")


# What each flag of the restore's `k3s server` means, in k3s's own words (docs.k3s.io/cli/etcd-snapshot,
# "Restoring Snapshots" and "S3 Compatible Object Store Support"; docs.k3s.io/cli/server). A flag added,
# dropped or renamed fails the test below: read its meaning in k3s's documentation before changing this.
RESTORE_FLAGS = {
    "--cluster-reset": "Forget all peers and become sole member of a new cluster",
    "--cluster-reset-restore-path": "Path to snapshot file to be restored (with --etcd-s3: its name in the bucket)",
    "--etcd-s3": "Enable backup to S3 (and, with --cluster-reset, restore from it: the bucket, endpoint and keys"
    " are the config drop-in's etcd-s3-* settings)",
    "--token-file": "File containing the cluster-secret/token (the original cluster's: it decrypts the snapshot)",
}


def test_the_etcd_restore_runs_k3s_with_exactly_the_documented_restore_flags():
    import shlex

    from components.k3s import ETCD_SNAPSHOT_CONFIG, etcd_restore_script

    script = etcd_restore_script("etcd-snapshot-pi5-1764561600.zip").replace("\\\n", " ")
    line = next(line for line in script.splitlines() if " k3s server " in line)
    words = shlex.split(line.split(" </dev/null")[0])
    assert words[:6] == ["timeout", "900", "sudo", "-n", "k3s", "server"], "bounded, as root, never interactive"
    flags = dict(word.partition("=")[::2] for word in words[6:])
    assert sorted(flags) == sorted(RESTORE_FLAGS), "a flag whose meaning the table above does not say"
    assert flags["--cluster-reset"] == "" and flags["--etcd-s3"] == "", "switches, not settings"
    # The snapshot's name in the bucket (the script's `snapshot=`), not a path on the node; the token from a file.
    assert (
        flags["--cluster-reset-restore-path"] == "$snapshot" and "snapshot=etcd-snapshot-pi5-1764561600.zip" in script
    )
    assert flags["--token-file"] == "$token"
    # The bucket's credentials stay in the root-only drop-in, which the script checks for first: never argv.
    assert not [w for w in words if w.startswith("--etcd-s3-")]
    assert f"test -s {ETCD_SNAPSHOT_CONFIG}" in script


def test_the_plan_says_what_is_backed_up_where_and_how_often_and_what_is_not(stack, ha):
    from spitikos import plan as offline

    pi5 = "\n".join(offline._backups(offline.from_recording(stack)))
    assert "Backups (R2 bucket: spitikos-backups):" in pi5
    assert "volume vault/data-vault-0: restic, cron '15 */6 * * *', keeps 4 hourly, 7 daily, 4 weekly" in pi5
    assert "cluster state: NOT backed up (datastore sqlite)" in pi5 and "NOT backed up: Redis (a cache)" in pi5
    grown = offline.from_recording(ha)
    text = "\n".join(offline._backups(grown))
    assert "cluster state (etcd): cron '0 */6 * * *', compressed, keeps 8 on each server and 28 in " in text
    assert "from 3 server(s)" in text
    assert not any(s in text for s in ha.generated_secrets()), "the plan prints no key"
    # Three servers install one after another, in parallel with the releases: still 3 slow steps.
    assert grown.critical_path()[0] == 3
    assert grown.total_footprint().memory_requests_mi <= 1024


def test_bad_backup_settings_stop_the_program_before_any_resource_exists():
    from conftest import HA, run_main, stack_config

    config = {**stack_config(), **HA, "spitikos:servers": json.dumps(["10.0.0.206"])}
    config["spitikos:backupVolumes"] = json.dumps(["argocd/redis-data"])
    with pytest.raises(SettingsError) as raised:
        run_main(config)
    assert [p.split(":")[1] for p in raised.value.problems] == ["servers", "backupVolumes"]
    from pulumi.runtime import settings

    assert settings.SETTINGS.monitor.registrations == {}
