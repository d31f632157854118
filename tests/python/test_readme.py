"""The README's quick starts run as written: the command-line block under
"The command line" and the Python block under "Python", each in a fresh
directory, with the build's tool on the PATH and its module importable."""
import os
import re
import subprocess
import sys

from conftest import CLI

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def block(section, language):
    """The first fenced block of `language` under the README's `## section`."""
    text = open(README, encoding="utf-8").read()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    found = re.search(rf"```{language}\n(.*?)```", text[start:end if end >= 0 else None], re.S)
    assert found, f"README: no {language} block under '## {section}'"
    return found.group(1)


def run(command, cwd):
    env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(CLI)) + os.pathsep + os.environ["PATH"])
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command[:2]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_the_command_line_quick_start_runs_as_written(tmp_path):
    assert os.path.basename(CLI) == "mipin", "the README calls the tool as `mipin`"
    run(["bash", "-euo", "pipefail", "-c", block("The command line", "sh")], tmp_path)
    for produced in ["cnn.pt", "cnn.mipin", "maps/grid.png", "maps-ig/grid.png", "eval/metrics.json",
                     "eval/report.html"]:
        assert (tmp_path / produced).is_file(), produced
    assert list((tmp_path / "maps").glob("*.npy")), "no raw attributions written"


def test_the_python_quick_start_runs_as_written(tmp_path):
    out = run([sys.executable, "-c", block("Python", "python")], tmp_path)
    agreement = float(out.strip().splitlines()[-1])
    assert 0.0 <= agreement <= 1.0
    for produced in ["example_heatmap.png", "example_overlay.png", "report/metrics.json", "report/report.html"]:
        assert (tmp_path / produced).is_file(), produced
