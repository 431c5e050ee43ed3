"""Read `$GITHUB_OUTPUT` back the way the Actions runner does (`name=value` and `name<<DELIM` blocks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Output:
    name: str
    value: str
    delimiter: str | None  # None for a one-line `name=value`


def parse_github_output(text: str) -> list[Output]:
    """Every output in file order; raises ValueError on a block whose delimiter never comes."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    outputs: list[Output] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        heredoc = line.find("<<")
        equals = line.find("=")
        if heredoc > 0 and (equals < 0 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            try:
                end = lines.index(delimiter, index + 1)
            except ValueError:
                raise ValueError(f"output {name!r}: delimiter {delimiter!r} not found") from None
            outputs.append(Output(name, "\n".join(lines[index + 1 : end]), delimiter))
            index = end + 1
        elif equals > 0:
            outputs.append(Output(line[:equals], line[equals + 1 :], None))
            index += 1
        elif line.strip() == "":
            index += 1
        else:
            raise ValueError(f"line {index + 1}: not an output: {line!r}")
    return outputs


def output_values(text: str) -> dict[str, str]:
    """name -> value; a later output of the same name wins, as in the runner."""
    return {output.name: output.value for output in parse_github_output(text)}
