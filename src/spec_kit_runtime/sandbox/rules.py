"""The sandbox's tables of names: modules blocked and allowed, builtins removed, gadgets.

One place for them because three layers refuse the same names: the source check
(``source_check``), the importer's module views (``importer``) and the builtins that
``PluginSandbox`` hands a plugin module.
"""

from __future__ import annotations

from collections.abc import Iterator

BLOCKED_MODULES: frozenset[str] = frozenset({
    # system, processes, signals
    "os", "sys", "subprocess", "shutil", "platform", "signal", "multiprocessing",
    "threading", "_thread", "concurrent", "atexit", "sysconfig", "site", "runpy",
    # network
    "socket", "ssl", "http", "urllib", "ftplib", "smtplib", "poplib", "imaplib",
    "telnetlib", "socketserver", "select", "selectors", "asyncio", "aiohttp", "requests",
    "httpx",
    # code execution and introspection
    "code", "codeop", "compile", "imp", "_imp", "importlib", "zipimport", "pkgutil",
    "inspect", "traceback", "gc", "dis", "pdb", "bdb", "types", "operator", "_operator",
    "faulthandler", "tracemalloc", "builtins", "__builtins__",
    # files and raw memory
    "io", "_io", "tempfile", "fileinput", "linecache", "fnmatch", "glob", "shlex",
    "codecs", "mmap", "posixpath", "ntpath", "ctypes", "cffi", "_ctypes",
    # serialization that runs code
    "pickle", "_pickle", "shelve", "marshal", "dill", "copyreg",
    # OS specifics
    "pty", "tty", "termios", "resource", "posix", "nt", "msvcrt", "winreg", "crypt",
    "spwd", "grp", "pwd", "syslog",
    # submodules of allowed packages that open sockets, files or eval config
    "logging.config", "logging.handlers",
})

ALLOWED_MODULES: frozenset[str] = frozenset({
    "spec_kit_contracts", "typing", "dataclasses", "json", "re", "datetime", "enum", "abc",
    "collections", "functools", "itertools", "textwrap", "string", "math", "uuid",
    "hashlib", "pathlib", "logging", "difflib", "decimal", "fractions", "random",
    "statistics", "copy", "pprint", "reprlib", "contextlib", "warnings", "weakref",
    "numbers", "bisect", "heapq", "array", "struct", "unicodedata", "base64", "binascii",
    "html", "hmac",
})

# Builtins removed from the plugin's namespace (1.0's list, less the harmless ``hasattr``).
FORBIDDEN_BUILTINS: frozenset[str] = frozenset({
    "eval", "exec", "compile", "__import__", "open", "input", "breakpoint", "memoryview",
    "vars", "locals", "globals", "getattr", "setattr", "delattr", "dir", "help",
    "credits", "license", "copyright", "exit", "quit",
})

# Public callables of allowed modules that look attributes up from strings or reach frames.
GADGETS = frozenset({
    "attrgetter", "methodcaller", "Formatter", "vformat", "get_field", "StrFormatStyle",
    "PercentStyle", "StringTemplateStyle", "currentframe", "_getframe", "get_type_hints",
    "ForwardRef",
})


def module_prefixes(dotted: str) -> Iterator[str]:
    """``a``, ``a.b``, ``a.b.c`` for ``a.b.c``: the packages a module lives in, and itself."""
    parts = dotted.split(".")
    return (".".join(parts[: i + 1]) for i in range(len(parts)))


def is_blocked_module(name: str) -> bool:
    """True when ``name`` or a package it lives in is blocked."""
    return any(prefix in BLOCKED_MODULES for prefix in module_prefixes(name))
