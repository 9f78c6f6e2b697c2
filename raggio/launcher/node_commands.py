"""Command strings written for Ray, run with raggio: ``ray start ...`` becomes ``raggio start ...``.

A cluster file's commands (``head_start_ray_commands: [ray stop, ray start --head
--port=6379]``) name Ray's ``ray`` command. ``to_raggio`` rewrites ``ray`` where the
shell would run it as a command: at the start, after ``;``, ``&&``, ``||``, ``|``,
``&``, ``(``, ``$(``, a backtick, ``{`` or a newline, after the keywords ``then``,
``do``, ``else``, ``if``, ``while``, ``until``, ``!``, ``time``, ``exec``, ``nohup``, ``command``,
after ``sudo`` (with its options) or ``env``, and after variable assignments
(``FOO=1 ray start``). Anywhere else ``ray`` is left alone: ``pip install ray``,
``echo ray``, ``~/ray_bootstrap_config.yaml``, ``ray_results``, ``/usr/bin/ray``.
Commands naming ``raggio`` pass through unchanged.

The updater (``updater.py``) calls it on every command it runs on a node; nothing here
runs anything.
"""

from __future__ import annotations

import re

_COMMAND_WORD = re.compile(r"""
    (?P<before>
        (?: ^ | (?<=[;&|(`{\n]) )                 # the start, or just after a separator
        (?: \s*
            (?: (?:then|do|else|if|elif|while|until|!|time|exec|nohup|command) (?=\s)
              | sudo (?: \s+ -u \s+ \S+ | \s+ -[A-Za-z]+ )*
              | env
              | [A-Za-z_][A-Za-z0-9_]* = (?: '[^']*' | "[^"]*" | [^\s;&|]* )
            )
            (?=\s)
        )*
        \s*
    )
    ray (?= \s | $ | [;&|)`] )
""", re.VERBOSE)


def to_raggio(command: str) -> str:
    """``command`` with Ray's ``ray`` command turned into ``raggio`` (see the module
    docstring for where it counts as the command)."""
    return _COMMAND_WORD.sub(lambda match: match.group("before") + "raggio", command)
