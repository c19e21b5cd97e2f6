"""A command that runs a script: its own options anywhere before ``--``, the rest to the script.

``modelyard run submit SOURCE_DIR SCRIPT [ARGS]`` reads its options wherever they are, before
or after SOURCE_DIR and SCRIPT, and hands the script everything else that follows SCRIPT. The
rule, applied once here before click parses:

- Before SCRIPT every option is the command's: a misspelt one is a usage error with click's
  suggestion (``--experimnt``: "Did you mean '--experiment'?"), never taken as SOURCE_DIR.
- After SCRIPT, the command's options are its own (``--wait``, ``--experiment NAME``); any other
  word goes to the script (``--lr 0.1``), except a long option one edit away from one of the
  command's (``--wiat``): that is refused with the suggestion, since it is far more often a typo
  than an argument of the script.
- After ``--`` everything goes to the script, as written.

Example::

    @group.command("submit", cls=ScriptCommand)
    @click.argument("source_dir")
    @click.argument("script")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def submit(source_dir: str, script: str, args: tuple[str, ...]) -> None: ...

    # modelyard run submit ./src train.py --lr 0.1 --wait -- --experiment 3
    #   the command: --wait; the script: --lr 0.1 --experiment 3
"""

from __future__ import annotations

from collections.abc import Sequence

import click

# SOURCE_DIR and SCRIPT: the positionals before the script's arguments.
_LEADING_ARGUMENTS = 2
# Typos found after SCRIPT: a name this many edits (an insertion, a deletion, a change or a swap
# of neighbours) from one of the command's long options.
_TYPO_EDITS = 1


class NearOption(click.NoSuchOption):
    """A word after SCRIPT that looks like a misspelt option of the command."""

    def format_message(self) -> str:
        usage = f"{self.ctx.command_path} ... SCRIPT" if self.ctx is not None else "... SCRIPT"
        return (
            f"{super().format_message()} To pass {self.option_name!r} to the script, put it "
            f"after '--': {usage} -- {self.option_name}"
        )


class ScriptCommand(click.Command):
    """A click command whose last argument (``nargs=-1``) is the command line of a script.

    It takes the command's options wherever they come before ``--`` and passes the other words
    after SCRIPT to the last argument; see the module docstring for the rule.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        options, positionals = self._split(ctx, args)
        # Every positional after '--': click takes them as written, so a script argument
        # that starts with '-' is never read as an option of this command.
        return super().parse_args(ctx, [*options, "--", *positionals])

    def _split(self, ctx: click.Context, args: Sequence[str]) -> tuple[list[str], list[str]]:
        takes_value: dict[str, bool] = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                for declared in (*param.opts, *param.secondary_opts):
                    takes_value[declared] = not (param.is_flag or param.count)
        options: list[str] = []
        positionals: list[str] = []
        words = iter(args)
        for word in words:
            if word == "--":
                positionals.extend(words)
                break
            leading = len(positionals) < _LEADING_ARGUMENTS
            name = _option_name(word, takes_value)
            if name is None:
                positionals.append(word)
            elif name in takes_value:
                options.append(word)
                # A value given as the next word ("--experiment mnist", "-e mnist").
                value = next(words, None) if takes_value[name] and word == name else None
                if value is not None:
                    options.append(value)
            elif leading:
                options.append(word)  # click reports it, with its suggestion
            else:
                if not ctx.resilient_parsing:  # shell completion parses half-typed lines
                    _refuse_near_miss(ctx, name, takes_value)
                positionals.append(word)
        return options, positionals


def _option_name(word: str, known: dict[str, bool]) -> str | None:
    """The option ``word`` names (``--tag=k=v`` -> ``--tag``, ``-emnist`` -> ``-e``), or None
    when it is not an option at all ("-" and words without a leading dash)."""
    if not word.startswith("-") or word == "-":
        return None
    if word.startswith("--"):
        return word.partition("=")[0]
    short = word[:2]
    return short if short in known else word


def _refuse_near_miss(ctx: click.Context, name: str, known: dict[str, bool]) -> None:
    if not name.startswith("--"):
        return  # short options of scripts (-v, -n 4) are too close to anything to judge
    near = [
        option
        for option in known
        if option.startswith("--") and _edits(name, option) <= _TYPO_EDITS
    ]
    if near:
        raise NearOption(name, possibilities=near, ctx=ctx)


def _edits(a: str, b: str) -> int:
    """The optimal string alignment distance: insertions, deletions, changes and swaps of two
    neighbouring characters (``--wiat`` is one from ``--wait``)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]
