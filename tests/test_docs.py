"""The documentation a user reads: generated pages current, names and paths real, the README
short, and the guide for one's own images run as written."""

import glob
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, cli_env

sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_docs  # noqa: E402

README = os.path.join(ROOT, "README.md")
PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
# Flags of programs other than ours that the docs show (docker, TF Serving, pytest, mkdocs,
# pip), and absl's own.
FOREIGN_FLAGS = {"rm", "model_name", "model_base_path", "rest_api_port", "port", "durations",
                 "strict", "upgrade", "flagfile", "helpfull", "help", "verbosity", "mount",
                 "name", "index-url", "requeue"}  # requeue: Slurm's sbatch


@pytest.fixture(scope="module")
def command_infos():
    """Each command's flags, read once (a process per command)."""
    return {command: make_docs.command_flags(command) for command in make_docs.COMMANDS}


def _texts():
    """(path, text) of the README, every docs page and the Markdown beside the code."""
    paths = [README, os.path.join(ROOT, "CONTRIBUTING.md"), os.path.join(ROOT, "CHANGELOG.md")]
    paths += PAGES + sorted(glob.glob(os.path.join(ROOT, "experiments", "*", "RESULTS.md")))
    for path in paths:
        with open(path, encoding="utf-8") as f:
            yield os.path.relpath(path, ROOT), f.read()


def test_the_generated_pages_are_current(command_infos, tmp_path):
    stale = []
    for rel, text in make_docs.pages(command_infos).items():
        path = os.path.join(ROOT, "docs", rel)
        if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
            stale.append(rel)
    assert not stale, f"run `python tools/make_docs.py`: {stale} differ from the code"


def test_the_readme_is_short_and_names_no_commit():
    text = open(README, encoding="utf-8").read()
    assert len(text.splitlines()) <= 200
    assert not _commit_like(text)


def _commit_like(text):
    """Hex words of 7-40 characters with a digit and a letter: commit hashes."""
    return [w for w in re.findall(r"(?<![\w-])[0-9a-f]{7,40}(?![\w-])", text)
            if re.search(r"[a-f]", w) and re.search(r"[0-9]", w)]


@pytest.mark.parametrize("rel,text", list(_texts()), ids=lambda v: v if "/" in v or
                         v.endswith(".md") else "")
def test_docs_name_no_commit_hash_and_no_development_path(rel, text):
    assert not _commit_like(text)
    assert "/work/" not in text and "/tmp/s30" not in text


def _script_flags():
    """Flags of the scripts under experiments/, bench/ and tools/ (argparse)."""
    found = set()
    for pattern in ("experiments/*/*.py", "bench/*.py", "tools/*.py"):
        for path in glob.glob(os.path.join(ROOT, pattern)):
            found.update(re.findall(r"add_argument\(\s*\"--([\w-]+)\"",
                                    open(path, encoding="utf-8").read()))
    return found


def test_every_flag_and_command_the_docs_name_exists(command_infos):
    ours = {f["name"] for info in command_infos.values() for f in info["flags"]}
    booleans = {f["name"] for info in command_infos.values() for f in info["flags"]
                if f["type"] == "bool"}
    known = ours | {f"no{name}" for name in booleans} | _script_flags() | FOREIGN_FLAGS
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        commands = set(re.findall(r"\"(autogan-[\w-]+)=", f.read()))
    unknown = []
    for rel, text in _texts():
        if rel.startswith("docs/reference/"):
            continue  # generated from the flags themselves
        unknown += [f"{rel}: --{flag}" for flag in
                    re.findall(r"(?<![\w-])--([a-z][\w-]*)", text) if flag not in known]
        unknown += [f"{rel}: {name}" for name in re.findall(r"(?<![\w/-])autogan-[a-z][\w-]*", text)
                    if name not in commands and name != "autogan-tf"]
    assert not unknown, "\n".join(sorted(set(unknown)))


_PATH = re.compile(r"`((?:autogan_tf|tests|tools|bench|experiments|flags|docs|bin|\.ci)/[^`\s]*"
                   r"|[\w.-]+\.(?:py|md|cfg|yml|cff))`")


def _repository_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        files = out.stdout.split()
    else:  # not a git checkout: walk it
        files = [os.path.relpath(os.path.join(d, f), ROOT) for d, _, fs in os.walk(ROOT)
                 for f in fs]
    return {os.path.basename(f) for f in files}


def test_every_repository_path_in_backticks_exists():
    """A path with a folder exists from the checkout's top; a bare file name exists
    somewhere in it (``search_space.py``)."""
    names = _repository_files()
    missing = []
    for rel, text in _texts():
        for path in _PATH.findall(text):
            if any(c in path for c in "*<>{}$") or path.endswith("/..."):
                continue  # a pattern, not a file
            path = path.rstrip(".,:;")
            found = (path in names if "/" not in path else
                     os.path.exists(os.path.join(ROOT, path))
                     or os.path.exists(os.path.join(ROOT, os.path.dirname(rel), path)))
            if not found:
                missing.append(f"{rel}: {path}")
    assert not missing, "\n".join(missing)


# -- the guide for one's own images ---------------------------------------------------------
# Budgets appended to each command of the guide (flags after a flagfile win): the commands
# as written, at a few seconds each.
TINY = ("--bottom_width=2 --gf_dim=4 --df_dim=4 --latent_dim=4 --g_batch_size=4 "
        "--d_batch_size=4 --n_critic=1 --eval_batch_size=10")
SMALLER = {
    "autogan-search": TINY + " --shared_iters=2 --max_search_iters=3 --grow_steps=1,2 "
                             "--ctrl_steps=1 --ctrl_sample_batch=2 --num_candidates=2 --topk=2 "
                             "--reward_num_images=10 --reset_window=4 --hid_size=8 "
                             "--label_free_steps=2",
    "autogan-derive": TINY + " --max_iters=2 --eval_num_samples=10 --label_free_steps=2",
    "autogan-train": TINY + " --max_iters=4 --eval_every=2 --eval_num_samples=10 "
                            "--label_free_steps=2",
    "autogan-evaluate": "--num_samples=10 --batch_size=10",
    "autogan-export": "",
    "autogan-sample": "--num_samples=4",
}


def _guide_commands(section="The commands"):
    """The lines of the first ```bash block under the guide's heading ``## section``."""
    text = open(os.path.join(ROOT, "docs", "guides", "own-images.md"), encoding="utf-8").read()
    block = re.search(rf"## {re.escape(section)}\n.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def _run_guide_lines(lines, tmp_path, folder):
    """Run each guide line with `SMALLER`'s budget appended, as the guide's variables set."""
    env = cli_env(DATA=f"folder:{folder}", RUNS=str(tmp_path / "runs"))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    ran = []
    for line in lines:
        program = shlex.split(line)[0]
        command = f"{line} {SMALLER[program]}"
        out = subprocess.run(["bash", "-c", command], cwd=str(tmp_path), env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{command}\n{out.stderr[-3000:]}"
        ran.append(program)
    return ran


def _small_folder(root):
    """Two classes of 20 pictures each, 24x20 px (not square: they are centre-cropped)."""
    from PIL import Image

    from autogan_tf import data

    images, labels = data.make_shapes(80, image_size=24, seed=3)
    for name, label in (("circles", 0), ("squares", 1)):
        os.makedirs(os.path.join(root, name))
        for i, image in enumerate(images[labels == label][:20]):
            padded = np.concatenate([image, image[:, :6]], axis=1)[:20]  # 20 x 30
            Image.fromarray(padded).save(os.path.join(root, name, f"{i}.png"))


def test_the_own_images_guide_runs_as_written(tmp_path):
    commands = _guide_commands()
    assert commands[0].startswith("DATA=folder:") and commands[1].startswith("RUNS=")
    _small_folder(str(tmp_path / "pictures"))
    ran = _run_guide_lines(commands[2:], tmp_path, tmp_path / "pictures")
    assert ran == list(SMALLER)
    runs = tmp_path / "runs"
    # Two classes: too few for IS, so the search's reward is KID of a label-free network.
    for path in ("search/search_result.json", "search/label_free_contrastive.keras",
                 "derive/derive_result.json", "train/config.json", "train/eval_latest.json",
                 "export/autogan/1/saved_model.pb"):
        assert (runs / path).exists(), path
    assert len(list((runs / "samples").glob("*.png"))) >= 4


def test_the_own_images_guide_runs_on_a_folder_without_sub_folders(tmp_path):
    from PIL import Image

    from autogan_tf import data

    commands = _guide_commands("No labels?")
    assert [shlex.split(c)[0] for c in commands] == ["autogan-search", "autogan-derive",
                                                     "autogan-train"]
    folder = tmp_path / "pictures"
    folder.mkdir()
    images, _ = data.make_shapes(30, image_size=16, seed=4)
    for i, image in enumerate(images):  # loose files: one class, no label anywhere
        Image.fromarray(image).save(folder / f"{i}.png")
    _run_guide_lines(commands, tmp_path, folder)
    runs = tmp_path / "runs"
    derived = json.loads((runs / "derive" / "derive_result.json").read_text())
    assert derived["best"]["fid"] is not None
    for path in ("search/label_free_contrastive.keras", "derive/label_free_contrastive.keras",
                 "train/label_free_contrastive.keras"):
        assert (runs / path).exists(), path
    assert not (runs / "train" / "classifier.keras").exists()  # nothing learnt from labels
    records = [json.loads(line) for line in (runs / "train" / "metrics.jsonl").open()]
    assert any(r.get("fid") is not None and "label_free" in r.get("classifier", "")
               for r in records)  # the training's evaluations scored in the label-free features
