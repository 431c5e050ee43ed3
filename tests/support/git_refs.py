"""The one table of branch/tag names for every side that checks them (manifest, prepare, deploy)."""

from __future__ import annotations

SAFE_REFS = [
    "main",
    "develop",
    "feature/login-form",
    "release/2024.06",
    "v1.2.3",  # deploys also take tags
    "v1.2.3-rc.1",
    "user_name/fix_1",
    "a",
    "x" * 200,
]

UNSAFE_REFS = [
    "",
    "x" * 201,
    "main\n",  # `$` in a regex also matches before a trailing newline
    "main\nx",
    " main",
    "main;id",
    "$(id)",
    "a b",
    "feat@x",
    "a@{1}",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b]",
    "a\\b",
    "a\tb",
    "-rf",
    "--upload-pack=x",
    "/main",
    "main/",
    ".hidden",
    "f/.x",
    "main.",
    "../etc",
    "a..b",
    "a//b",
    "a.lock",
    "a.lock/b",
    "x/a.lock/y",
    "HEAD",
    "é",
]
