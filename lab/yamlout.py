"""A tiny YAML writer (standard library only): dicts, lists, strings, numbers, booleans, None.

Strings are written as JSON double-quoted scalars (valid YAML), so nothing needs escaping rules of
its own; keys that are plain identifiers are written bare.
"""

import json
import re

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_PLAIN_VALUE = re.compile(r"^[A-Za-z_/][A-Za-z0-9_.\-/]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _key(k):
    k = str(k)
    if _PLAIN_KEY.match(k) and k.lower() not in _RESERVED:
        return k
    return json.dumps(k)


def _scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    s = str(v)
    if _PLAIN_VALUE.match(s) and s.lower() not in _RESERVED:
        return s
    return json.dumps(s)


def _emit(v, indent, out):
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return None
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                out.append(f"{pad}{_key(k)}:")
                _emit(x, indent + 1 if isinstance(x, dict) else indent, out)
            elif isinstance(x, dict):
                out.append(f"{pad}{_key(k)}: {{}}")
            elif isinstance(x, list):
                out.append(f"{pad}{_key(k)}: []")
            else:
                out.append(f"{pad}{_key(k)}: {_scalar(x)}")
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, dict) and x:
                sub = []
                _emit(x, indent + 1, sub)
                first = sub[0][len(pad) + 2 :]
                out.append(f"{pad}- {first}")
                out.extend(sub[1:])
            elif isinstance(x, list) and x:
                out.append(f"{pad}-")
                _emit(x, indent + 1, out)
            elif isinstance(x, dict):
                out.append(f"{pad}- {{}}")
            elif isinstance(x, list):
                out.append(f"{pad}- []")
            else:
                out.append(f"{pad}- {_scalar(x)}")
    return None


def dump(v):
    """One YAML document."""
    if isinstance(v, (dict, list)) and v:
        out = []
        _emit(v, 0, out)
        return "\n".join(out) + "\n"
    return _scalar(v) + "\n"


def dump_all(docs):
    """Several documents separated by `---`."""
    return "---\n".join(dump(d) for d in docs)
