"""Values for the formats the Runner document names itself, for schemathesis.

The document states what JSON Schema cannot check: a cron expression, an instant after the
request, an OpenSSH private key. The server checks them; these strategies make
values of those formats, so that schemathesis's positive cases are valid where the document
says they are, and a refusal of one of them is a real mismatch.
"""

import base64
import datetime
import os
import subprocess
import tempfile

import schemathesis
from hypothesis import strategies as st


def _private_key(kind: str, bits: int | None = None) -> str:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "key")
        command = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", path]
        if bits:
            command += ["-b", str(bits)]
        subprocess.run(command, check=True)
        with open(path, "rb") as key:
            return base64.b64encode(key.read()).decode()


schemathesis.openapi.format(
    "openssh-private-key",
    st.sampled_from(
        [_private_key("ed25519") for _ in range(3)] + [_private_key("rsa", 3072)]
    ),
)


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high).map(str)
    span = st.tuples(st.integers(low, high), st.integers(low, high)).map(
        lambda pair: f"{min(pair)}-{max(pair)}"
    )
    step = st.integers(1, high - low + 1).map(lambda n: f"*/{n}")
    items = st.lists(st.one_of(number, span), min_size=1, max_size=3).map(",".join)
    return st.one_of(st.just("*"), number, span, step, items)


schemathesis.openapi.format(
    "cron",
    st.tuples(_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 6)).map(
        " ".join
    ),
)

_SOON = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
schemathesis.openapi.format(
    "future-date-time",
    st.datetimes(
        min_value=_SOON.replace(tzinfo=None),
        max_value=datetime.datetime(2999, 12, 31),
        timezones=st.just(datetime.timezone.utc),
    ).map(lambda at: at.replace(microsecond=0).isoformat().replace("+00:00", "Z")),
)


@schemathesis.hook
def map_body(context, body):
    """Host ids are unique in a list, a rule JSON Schema cannot state (the document says it in
    words): a generated list keeps the first host of each id."""
    return _unique_hosts(body)


def _unique_hosts(value):
    if isinstance(value, dict):
        mapped = {key: _unique_hosts(item) for key, item in value.items()}
        hosts = mapped.get("hosts")
        if isinstance(hosts, list):
            seen = set()
            unique = []
            for host in hosts:
                key = host.get("id") if isinstance(host, dict) else None
                if isinstance(key, str):
                    if key in seen:
                        continue
                    seen.add(key)
                unique.append(host)
            mapped["hosts"] = unique
        return mapped
    if isinstance(value, list):
        return [_unique_hosts(item) for item in value]
    return value
