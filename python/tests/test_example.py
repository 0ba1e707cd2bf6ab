"""The README's Python block and examples/rag_retrieval.py, run as a user would run them."""
import os
import re
import subprocess
import sys

import pytest

import quiver
from helpers import REPO


def run(args, cwd=None):
    """Run a script with this interpreter and this quiver module, wherever cwd is."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(quiver.__file__)))
    return subprocess.run([sys.executable] + args, cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout


def test_readme_python_block_runs_and_prints_what_it_says(tmp_path):
    readme = (REPO / "README.md").read_text()
    marker = readme.index("<!-- readme-python-example:")
    block = re.search(r"```python\n(.*?)```", readme[marker:], re.S).group(1)
    (tmp_path / "example.py").write_text(block)
    out = run([str(tmp_path / "example.py")], cwd=tmp_path).splitlines()
    assert out[0] == "[0 1 2 3 4]"
    assert out[1] == "[0 1 2 3 4]"                                    # the sq8 index
    assert out[2] == "1 0.999 {'title': 'east', 'lang': 'en'}"
    assert (tmp_path / "my-data").is_dir()


@pytest.mark.skipif(not os.path.isdir("/usr/share/common-licenses"), reason="SKIP: no /usr/share/common-licenses")
def test_rag_example_answers_with_filtered_context():
    example = str(REPO / "examples" / "rag_retrieval.py")
    out = run([example, "--source", "MPL-2.0", "-k", "2",
               "What happens to my license if I sue for patent infringement?"])
    assert re.search(r"^\[1\] MPL-2\.0, chunk \d+", out, re.M)
    assert "If You initiate litigation" in out
    assert not re.search(r"^\[\d\] (?!MPL-2\.0)", out, re.M)          # the filter held
    out = run([example, "--kind", "readme", "-k", "3", "How do I run the tests?"])
    sources = re.findall(r"^\[\d\] (\S+), chunk", out, re.M)
    assert sources == ["README.md"] * 3
    assert "make test" in out
    out = run([example, "--kind", "license", "-k", "3", "May I distribute modified copies of the program?"])
    sources = re.findall(r"^\[\d\] (\S+), chunk", out, re.M)
    assert len(sources) == 3 and all(re.match(r"(L?GPL|GFDL|MPL|Apache|Artistic|BSD|CC0)", s) for s in sources)
    assert "modif" in out
    assert re.search(r"^\d+ chunks of \d+ documents", out, re.M)
