"""`shouwang user ...`: create accounts and API tokens from the command line (the first administrator)."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys

from shouwang.accounts import User, UserRole, hash_password, new_token, secret_digest

MIN_PASSWORD = 10


def _store(args: argparse.Namespace):
    from shouwang.settings import Settings
    from storage import open_store

    return open_store(args.url or Settings().database_url)


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new password (from stdin, a prompt, or generated) and whether it was generated."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if args.generate_password or not sys.stdin.isatty():
        return secrets.token_urlsafe(12), True
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    return first, False


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create an account."""
    from fastapi import HTTPException

    from api.routes.users import check_scope_fields
    from storage import AccountConflict

    password, generated = _password(args)
    if len(password) < MIN_PASSWORD:
        print(f"the password must have at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    store = _store(args)
    try:
        user = User(args.id, args.name or args.id, UserRole(args.role), hash_password(password), args.language,
                    args.person, tuple(args.community), tuple(args.grid), tuple(args.household), False, 0)
        try:
            check_scope_fields(store, user)
        except HTTPException as exc:  # its detail says what to fix
            print(f"cannot create {args.id}: {exc.detail}", file=sys.stderr)
            return 2
        try:
            store.create_user(user)
        except AccountConflict as exc:
            print(str(exc), file=sys.stderr)
            return 2
    finally:
        store.close()
    print(f"created {args.role} {args.id}" + (f" with password {password}" if generated else ""))
    return 0


def cmd_user_token(args: argparse.Namespace) -> int:
    """Create an API token for an account and print it once."""
    from storage import NotFound

    store = _store(args)
    try:
        try:
            store.user(args.id)
        except NotFound as exc:
            print(str(exc), file=sys.stderr)
            return 2
        token = new_token()
        store.add_token(args.id, args.name, secret_digest(token), token[:8], 0)
    finally:
        store.close()
    print(token)
    return 0


def add_user_commands(sub: argparse._SubParsersAction) -> None:
    """Register `shouwang user add|token`."""
    user = sub.add_parser("user", help="accounts for the web pages and the API")
    usub = user.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", help="create an account (the password is asked for, read from stdin or generated)")
    add.add_argument("id")
    add.add_argument("--role", required=True, choices=[r.value for r in UserRole])
    add.add_argument("--name", default="")
    add.add_argument("--language", default="zh", choices=("zh", "en"))
    add.add_argument("--person", help="the care-network person this account is (workers, family)")
    add.add_argument("--community", action="append", default=[], help="a manager's community (repeatable)")
    add.add_argument("--grid", action="append", default=[], help="a worker's grid as community/grid (repeatable)")
    add.add_argument("--household", action="append", default=[], help="a family member's household (repeatable)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.add_argument("--generate-password", action="store_true", help="generate one and print it")
    add.set_defaults(func=cmd_user_add)
    tok = usub.add_parser("token", help="create an API token for an account (printed once)")
    tok.add_argument("id")
    tok.add_argument("--name", default="cli")
    tok.set_defaults(func=cmd_user_token)
    for p in (add, tok):
        p.add_argument("--url", help="database URL (default: SHOUWANG_DATABASE_URL)")
