#!/usr/bin/python3
"""A real SMTP server for the email channel's tests, on Debian's python3-aiosmtpd.

Listens on 127.0.0.1 on three ports and stores every accepted message in DIR as
NAME.eml (the message as received) and then NAME.json (port, envelope sender and
recipients, the authenticated user and mechanism, whether the session was TLS):

  PORT      plain SMTP: no STARTTLS, no AUTH (a local relay)
  PORT+1    STARTTLS required before anything else, then AUTH (CRAM-MD5, LOGIN,
            PLAIN) required before MAIL
  PORT+2    implicit TLS (SMTPS), AUTH PLAIN required before MAIL

Recipients steer failures: tempfail@… gets 451 (transient) and nouser@… gets 550
(permanent) at RCPT. Exits when the process --exit-with names is gone (a test that
started the server itself).

usage: smtp_server.py --port PORT --dir DIR --cert CERT --key KEY
                      --user USER --password PASSWORD [--exit-with PID]
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import ssl
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("smtp_server")


class Store:
    """Writes accepted messages, one .eml and one .json per message."""

    def __init__(self, directory):
        self.dir = directory
        self.seq = 0
        os.makedirs(directory, exist_ok=True)

    def save(self, port, tls, session, envelope):
        self.seq += 1
        name = f"{time.time_ns()}-{os.getpid()}-{self.seq}-{port}"
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        with open(os.path.join(self.dir, name + ".eml"), "wb") as f:
            f.write(content)
        auth = session.auth_data if isinstance(session.auth_data, dict) else None
        meta = {
            "port": port,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": auth and auth.get("user"),
            "auth_mechanism": auth and auth.get("mechanism"),
            "tls": tls or session.ssl is not None,
            "eml": name + ".eml",
        }
        tmp = os.path.join(self.dir, name + ".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.rename(tmp, os.path.join(self.dir, name + ".json"))
        return name


class Handler:
    """The message hooks of one listener."""

    def __init__(self, store, port, implicit_tls, user, password, cram_md5):
        self.store = store
        self.port = port
        self.implicit_tls = implicit_tls
        self.user = user
        self.password = password
        if cram_md5:
            # aiosmtpd offers a handler's auth_X__Y method as mechanism X-Y
            self.auth_CRAM__MD5 = self._cram_md5

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "tempfail":
            return "451 4.3.0 Temporary failure, try again later"
        if local == "nouser":
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = self.store.save(self.port, self.implicit_tls, session, envelope)
        log.info("port %d: stored %s from %s to %s", self.port, name,
                 envelope.mail_from, envelope.rcpt_tos)
        return "250 OK stored"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        if login == self.user and password == self.password:
            return AuthResult(success=True,
                              auth_data={"user": login, "mechanism": mechanism})
        return AuthResult(success=False, handled=False)

    async def _cram_md5(self, server, args):
        challenge = f"<{time.time_ns()}.{os.getpid()}@argus-test>".encode()
        answer = await server.challenge_auth(challenge)
        if not isinstance(answer, bytes):
            # challenge_auth has answered the client already
            return AuthResult(success=False, handled=True)
        if b" " not in answer:
            return AuthResult(success=False, handled=False)
        login, digest = answer.rsplit(b" ", 1)
        want = hmac.new(self.password.encode(), challenge, hashlib.md5).hexdigest()
        if login.decode("utf-8", "replace") == self.user and hmac.compare_digest(
                digest.decode("ascii", "replace"), want):
            return AuthResult(success=True,
                              auth_data={"user": self.user, "mechanism": "CRAM-MD5"})
        return AuthResult(success=False, handled=False)


async def watch(pid):
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("process %d is gone; exiting", pid)
            return
        except PermissionError:
            pass
        await asyncio.sleep(1)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--exit-with", type=int, default=0)
    a = p.parse_args()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(a.cert, a.key)
    store = Store(a.dir)
    loop = asyncio.get_running_loop()

    def factory(port, cram_md5=False, implicit_tls=False, **kw):
        def make():
            h = Handler(store, port, implicit_tls, a.user, a.password, cram_md5)
            return SMTP(h, loop=loop, hostname="smtp.argus.test",
                        enable_SMTPUTF8=True, authenticator=h.authenticate, **kw)
        return make

    plain = factory(a.port)
    starttls = factory(a.port + 1, tls_context=tls, require_starttls=True,
                       auth_required=True, auth_require_tls=True, cram_md5=True)
    implicit = factory(a.port + 2, implicit_tls=True, auth_required=True,
                       auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    servers = [
        await loop.create_server(plain, "127.0.0.1", a.port),
        await loop.create_server(starttls, "127.0.0.1", a.port + 1),
        await loop.create_server(implicit, "127.0.0.1", a.port + 2, ssl=tls),
    ]
    log.info("listening on 127.0.0.1:%d (plain), %d (STARTTLS), %d (TLS); mail in %s",
             a.port, a.port + 1, a.port + 2, a.dir)
    try:
        if a.exit_with:
            await watch(a.exit_with)
        else:
            await asyncio.Event().wait()
    finally:
        for s in servers:
            s.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main())
