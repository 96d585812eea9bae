"""The backup bucket: an R2 bucket, and S3 credentials that can reach its objects and nothing else.

The credentials come from an account-owned API token whose one policy allows object read and
write on this bucket alone. R2's S3 endpoint takes the token's id as the access key id and the
SHA-256 (hex) of the token's value as the secret access key (developers.cloudflare.com/r2/api/tokens,
"Get S3 API credentials from an API token"). Both are Pulumi secrets from the token on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_cloudflare as cloudflare

# Under the bucket: k3s's etcd snapshots (its `etcd-s3-folder`) and VolSync's restic repositories.
ETCD_PREFIX = "etcd"
VOLUMES_PREFIX = "volumes"
# k3s prunes its own snapshots in S3 (etcd-s3-retention); this catches what it no longer sees
# (a renamed or replaced server's). Only under ETCD_PREFIX: restic prunes its repositories itself,
# and an object expired under one would corrupt it.
ETCD_SNAPSHOT_MAX_AGE_DAYS = 30
# The dashboard's "Object Read & Write" permission, scoped to buckets, is these two groups.
OBJECT_PERMISSION_GROUPS = ("Workers R2 Storage Bucket Item Read", "Workers R2 Storage Bucket Item Write")
# R2 accepts any region name; "auto" is the documented one.
REGION = "auto"


def endpoint(account_id: str) -> str:
    """R2's S3 endpoint for the account, without a scheme (as k3s's `etcd-s3-endpoint` takes it)."""
    return f"{account_id}.r2.cloudflarestorage.com"


def bucket_resource(account_id: str, bucket: str, jurisdiction: str = "default") -> str:
    """A token policy's resource key for one bucket's objects."""
    return f"com.cloudflare.edge.r2.bucket.{account_id}_{jurisdiction}_{bucket}"


def s3_secret(token_value: str) -> str:
    """The S3 secret access key R2 accepts for an API token: the SHA-256 of its value, in hex."""
    return hashlib.sha256(token_value.encode()).hexdigest()


@dataclass
class BackupBucketArgs:
    provider: cloudflare.Provider
    account_id: str
    bucket: str


class BackupBucket(pulumi.ComponentResource):
    """An R2 bucket (kept on `pulumi destroy`) and S3 credentials for its objects only."""

    bucket: str
    endpoint: str
    """R2's S3 endpoint for the account, without a scheme (as k3s's `etcd-s3-endpoint` takes it)."""
    access_key_id: pulumi.Output[str]
    """Secret."""
    secret_access_key: pulumi.Output[str]
    """Secret."""

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:r2:BackupBucket", name, None, opts)
        self.bucket = args.bucket
        self.endpoint = endpoint(args.account_id)
        self._child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        bucket = self._bucket(name, args)
        self._lifecycle(name, args, bucket)
        token = self._token(name, args, bucket)
        self.access_key_id = pulumi.Output.secret(token.id)
        self.secret_access_key = pulumi.Output.secret(token.value.apply(s3_secret))
        self.register_outputs({"bucket": self.bucket, "endpoint": self.endpoint})

    def _bucket(self, name: str, args: BackupBucketArgs) -> cloudflare.R2Bucket:
        # The backups outlive the stack: protected, and left in the account if the stack is destroyed.
        return cloudflare.R2Bucket(
            f"{name}-bucket",
            account_id=args.account_id,
            name=args.bucket,
            jurisdiction="default",
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(protect=True, retain_on_delete=True)),
        )

    def _lifecycle(self, name: str, args: BackupBucketArgs, bucket: cloudflare.R2Bucket) -> None:
        prefix = f"{ETCD_PREFIX}/"
        cloudflare.R2BucketLifecycle(
            f"{name}-lifecycle",
            account_id=args.account_id,
            bucket_name=bucket.name,
            jurisdiction="default",
            rules=[
                cloudflare.R2BucketLifecycleRuleArgs(
                    id="expire-old-etcd-snapshots",
                    enabled=True,
                    conditions=cloudflare.R2BucketLifecycleRuleConditionsArgs(prefix=prefix),
                    delete_objects_transition=cloudflare.R2BucketLifecycleRuleDeleteObjectsTransitionArgs(
                        condition=cloudflare.R2BucketLifecycleRuleDeleteObjectsTransitionConditionArgs(
                            type="Age", max_age=ETCD_SNAPSHOT_MAX_AGE_DAYS * 24 * 3600
                        )
                    ),
                    abort_multipart_uploads_transition=cloudflare.R2BucketLifecycleRuleAbortMultipartUploadsTransitionArgs(
                        condition=cloudflare.R2BucketLifecycleRuleAbortMultipartUploadsTransitionConditionArgs(
                            type="Age", max_age=7 * 24 * 3600
                        )
                    ),
                )
            ],
            opts=self._child,
        )

    def _token(self, name: str, args: BackupBucketArgs, bucket: cloudflare.R2Bucket) -> cloudflare.AccountToken:
        """An account-owned token (it outlives any one user's membership) with one policy."""
        groups = [self._permission_group(args.account_id, group) for group in OBJECT_PERMISSION_GROUPS]
        resources = bucket.name.apply(lambda b: json.dumps({bucket_resource(args.account_id, b): "*"}))
        return cloudflare.AccountToken(
            f"{name}-token",
            account_id=args.account_id,
            name=f"spitikos-backups-{args.bucket}",
            policies=[
                cloudflare.AccountTokenPolicyArgs(
                    effect="allow",
                    permission_groups=[cloudflare.AccountTokenPolicyPermissionGroupArgs(id=g) for g in groups],
                    resources=resources,
                )
            ],
            opts=self._child,
        )

    def _permission_group(self, account_id: str, group: str) -> pulumi.Output[str]:
        """A permission group's id, looked up by its exact name (the API wants it URL-encoded)."""
        found = cloudflare.get_account_api_token_permission_groups_output(
            account_id=account_id,
            name=quote(group),
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self._child.provider),
        )

        def only(groups: list) -> str:
            ids = [g.id for g in groups if g.name == group]
            if len(ids) != 1:
                raise ValueError(f"Cloudflare lists {len(ids)} permission groups named {group!r}, not one")
            return ids[0]

        return found.permission_groups.apply(only)
