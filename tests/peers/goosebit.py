#!/usr/bin/env python3
"""Drives a gooseBit (hawkBit DDI server) for the tests and the QEMU rung.

Python's standard library only; gooseBit itself runs from the venv scripts/setup makes
(GOOSEBIT_VENV, default /opt/makespacelive/goosebit-venv). Every command that changes
or reads gooseBit logs in as the admin user `serve` created, and prints JSON.

  goosebit.py prepare DIR                  pyproject.toml, database (aerich upgrade), artifacts/
  goosebit.py serve DIR HOST PORT [CERT KEY]
                                           runs gooseBit in the foreground (exec uvicorn),
                                           over HTTPS with CERT and KEY (PEM) if given
  goosebit.py wait URL [SECONDS]           waits until it answers, creates the admin user
  goosebit.py upload URL FILE              a RAUC bundle -> {"id", "version", "compatibility", "hash"}
  goosebit.py assign URL DEVICE SOFTWARE   direct assignment of software id to a device
  goosebit.py rollout URL SOFTWARE [FEED]  a rollout of a software id to a feed ("default")
  goosebit.py token URL DEVICE TOKEN       sets a device's target token (made if new)
  goosebit.py device URL DEVICE            {"last_state", "sw_version", "progress", "log", ...}

Device tokens are checked only when serve runs with GOOSEBIT_DEVICE_AUTH__ENABLE=true
(and GOOSEBIT_DEVICE_AUTH__MODE=strict: a device must have been given its token).
URL is gooseBit's base, e.g. http://127.0.0.1:60053 (for https://, SSL_CERT_FILE names
the CA to trust). A device DEVICE exists once it has polled /DEFAULT/controller/v1/DEVICE;
gooseBit offers it nothing before it has PUT its configData (hw_boardname, sw_version).
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

VENV = os.environ.get("GOOSEBIT_VENV", "/opt/makespacelive/goosebit-venv")
ADMIN = ("admin@example.com", "makespacelive-test")
POLL_TIME = "00:00:05"


def environment(directory):
    directory = os.path.abspath(directory)
    env = dict(os.environ)
    env.update(
        GOOSEBIT_DB_URI=f"sqlite:///{directory}/db.sqlite3",
        GOOSEBIT_ARTIFACTS_DIR=f"{directory}/artifacts",
        GOOSEBIT_POLL_TIME=env.get("GOOSEBIT_POLL_TIME", POLL_TIME),
        # No goosebit.yaml of the caller's working directory or /etc is read.
        GOOSEBIT_SETTINGS=f"{directory}/goosebit.yaml",
    )
    return directory, env


def site_packages():
    out = subprocess.run(
        [f"{VENV}/bin/python", "-c", "import goosebit, os; print(os.path.dirname(goosebit.__file__))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def prepare(directory):
    os.makedirs(directory, exist_ok=True)
    directory, env = environment(directory)
    os.makedirs(f"{directory}/artifacts", exist_ok=True)
    with open(f"{directory}/goosebit.yaml", "w") as f:
        f.write("# settings come from GOOSEBIT_* variables (tests/peers/goosebit.py)\n{}\n")
    with open(f"{directory}/pyproject.toml", "w") as f:
        f.write(
            "[tool.aerich]\n"
            'tortoise_orm = "goosebit.db.config.TORTOISE_CONF"\n'
            f'location = "{site_packages()}/db/migrations"\n'
            'src_folder = "./."\n'
        )
    out = subprocess.run([f"{VENV}/bin/aerich", "upgrade"], cwd=directory, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"goosebit.py: aerich upgrade failed:\n{out.stdout}{out.stderr}")
    print(json.dumps({"dir": directory}))


def serve(directory, host, port, cert=None, key=None):
    tls = ["--ssl-certfile", os.path.abspath(cert), "--ssl-keyfile", os.path.abspath(key)] if cert else []
    directory, env = environment(directory)
    os.chdir(directory)
    uvicorn = f"{VENV}/bin/uvicorn"
    os.execve(uvicorn, [uvicorn, "goosebit:app", "--host", host, "--port", str(port), *tls], env)


def request(method, url, body=None, content_type=None, token=None):
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as e:
        sys.exit(f"goosebit.py: {method} {url}: {e.code} {e.read().decode(errors='replace')}")
    return json.loads(text) if text else None


def form(fields):
    return urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"


def wait(url, seconds=60):
    deadline = time.monotonic() + float(seconds)
    while True:
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=5):
                break
        except urllib.error.HTTPError:
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"goosebit.py: gooseBit did not answer on {url} within {seconds} s")
            time.sleep(0.2)
    # The first user is made by /setup; it answers only while there is none.
    body, kind = form({"username": ADMIN[0], "password": ADMIN[1]})
    req = urllib.request.Request(f"{url}/setup", data=body, method="POST", headers={"Content-Type": kind})
    try:
        urllib.request.urlopen(req, timeout=60).read()
    except urllib.error.HTTPError:
        pass
    login(url)
    print(json.dumps({"url": url}))


def login(url):
    body, kind = form({"username": ADMIN[0], "password": ADMIN[1]})
    return request("POST", f"{url}/login", body, kind)["access_token"]


def upload(url, path):
    token = login(url)
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{os.path.basename(path)}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    software_id = request("PUT", f"{url}/api/v1/software", body, f"multipart/form-data; boundary={boundary}", token)["id"]
    listing = request("GET", f"{url}/api/v1/software", token=token)["software"]
    software = next(s for s in listing if s["id"] == software_id)
    print(json.dumps(software))


def assign(url, device, software_id):
    token = login(url)
    body = json.dumps({"devices": [device], "software": str(software_id)}).encode()
    print(json.dumps(request("PUT", f"{url}/api/v1/devices", body, "application/json", token)))


def token(url, device_id, target_token):
    token = login(url)
    body = json.dumps({"devices": [device_id], "auth_token": target_token}).encode()
    print(json.dumps(request("PUT", f"{url}/api/v1/devices", body, "application/json", token)))


def rollout(url, software_id, feed="default"):
    token = login(url)
    body = json.dumps({"name": f"rollout-{software_id}", "feed": feed, "software_id": int(software_id)}).encode()
    print(json.dumps(request("PUT", f"{url}/api/v1/rollouts", body, "application/json", token)))


def device(url, device_id):
    token = login(url)
    quoted = urllib.parse.quote(device_id, safe="")
    # The list, not /devices/DEVICE: that one fails (500) once software is assigned.
    listing = request("GET", f"{url}/api/v1/devices", token=token)["devices"]
    found = next((d for d in listing if d["id"] == device_id), None)
    if found is None:
        sys.exit(f"goosebit.py: no device {device_id!r} (it has not polled yet)")
    log = request("GET", f"{url}/api/v1/devices/{quoted}/log", token=token)
    found["log"] = log.get("log")
    found["progress"] = log.get("progress")
    print(json.dumps(found))


COMMANDS = {
    "prepare": (prepare, 1, 1),
    "serve": (serve, 3, 5),
    "wait": (wait, 1, 2),
    "upload": (upload, 2, 2),
    "assign": (assign, 3, 3),
    "rollout": (rollout, 2, 3),
    "token": (token, 3, 3),
    "device": (device, 2, 2),
}

if __name__ == "__main__":
    name, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if name not in COMMANDS or not COMMANDS[name][1] <= len(args) <= COMMANDS[name][2]:
        sys.exit(__doc__)
    COMMANDS[name][0](*args)
