"""What the stack's flow runs and other shells are told: the settings flow runs get (the
stack's Dask, its S3 server when ``--local-s3``) and ``<state_dir>/stack.env``."""

from __future__ import annotations

from pathlib import Path

from citywatch.settings import Settings
from citywatch.stack.deploy import settings_env
from citywatch.storage import Storage

LOCAL_S3_BUCKET = "citywatch"
LOCAL_S3_ROOT = f"s3://{LOCAL_S3_BUCKET}/city"
LOCAL_S3_KEY = "citywatch-local"  # localbucket checks no credentials; clients need some


def state_path(settings: Settings) -> Path:
    return Path(settings.storage.state_dir).expanduser().resolve()


def flow_settings(settings: Settings, dask_address: str, s3_endpoint: str, local_s3: bool) -> Settings:
    """The settings the stack's flow runs get (absolute paths, the stack's Dask)."""
    update: dict[str, object] = {
        "dask__address": dask_address,
        "storage__state_dir": str(state_path(settings)),
    }
    if local_s3:
        update.update(
            storage__root=LOCAL_S3_ROOT,
            s3__endpoint_url=s3_endpoint,
            s3__access_key_id=LOCAL_S3_KEY,
            s3__secret_access_key=LOCAL_S3_KEY,
            s3__allow_http=True,
            s3__bulk_delete=False,
        )
    else:
        update["storage__root"] = Storage(settings).root
    return settings.updated(**update)


def write_env_file(path: Path, prefect_api: str, flow: Settings, local_s3: bool) -> None:
    names = ["dask.address"] + (
        [
            "storage.root",
            "s3.endpoint_url",
            "s3.access_key_id",
            "s3.secret_access_key",
            "s3.allow_http",
            "s3.bulk_delete",
        ]
        if local_s3
        else []
    )
    env = settings_env(flow, only=names)
    lines = [f"export PREFECT_API_URL={prefect_api}"] + [f"export {k}={v}" for k, v in env.items()]
    path.write_text("\n".join(lines) + "\n")
