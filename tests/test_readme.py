"""The README's Python examples run and print what the README says (doctest)."""
import doctest
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python examples"
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    test = parser.get_doctest("\n".join(blocks), {}, "README", str(README), 0)
    runner.run(test)
    assert runner.failures == 0, f"{runner.failures} README example(s) failed (see the output above)"
    assert runner.tries >= 10
