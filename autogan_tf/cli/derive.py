"""autogan-derive: train each of a search's top architectures briefly and report the best.

    autogan-derive --search_result=/tmp/s/search_result.json --model_dir=/tmp/derive \
        --max_iters=2000 [training flags of autogan-train]

Each architecture trains in MODEL_DIR/rank_<i>/ (resumable); the table and
MODEL_DIR/derive_result.json list arch, IS and FID, best FID first.
"""

import json
import os

from absl import app, flags

from autogan_tf import config as config_lib
from autogan_tf.cli import common
from autogan_tf.config import TrainConfig

FLAGS = flags.FLAGS
common.define_runtime_flags()
config_lib.define_flags(TrainConfig, skip=("arch",))
flags.DEFINE_string("search_result", None, "search_result.json of autogan-search.")
flags.DEFINE_string("model_dir", None, "Directory for one training run per architecture.")
flags.DEFINE_integer("num_archs", 0, "Train only the first N architectures (0: all).")
flags.mark_flags_as_required(["search_result", "model_dir"])


def derive(search_result, model_dir, base_config_kwargs, num_archs=0):
    from autogan_tf import runlog, search_space, training

    with open(search_result, encoding="utf-8") as f:
        top = json.load(f)["top_archs"]
    if num_archs:
        top = top[:num_archs]
    rows = []
    for rank, entry in enumerate(top):
        arch = str(search_space.parse_arch(entry["arch"]))
        kwargs = dict(base_config_kwargs, arch=arch)
        kwargs["eval_every"] = kwargs["max_iters"]  # one evaluation, at the end
        config = TrainConfig(**kwargs)
        result = training.train(config, os.path.join(model_dir, f"rank_{rank}"))
        if result.get("preempted"):  # rerunning resumes this rank, then goes on
            return {"preempted": True, "rank": rank}
        rows.append({"rank": rank, "arch": arch, "search_reward": entry.get("reward"),
                     "is_mean": result.get("is_mean"), "is_std": result.get("is_std"),
                     "fid": result.get("fid")})
    rows.sort(key=lambda r: (r["fid"] is None, r["fid"] if r["fid"] is not None
                             else -(r["is_mean"] or 0)))
    out = {"best": rows[0] if rows else None, "archs": rows}
    runlog.write_json_atomic(os.path.join(model_dir, "derive_result.json"), out)
    return out


def main(argv):
    common.apply_runtime_flags()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    kwargs = config_lib.values_from_flags(TrainConfig, FLAGS, skip=("arch",))
    kwargs["classifier"] = common.resolve_classifier(kwargs["classifier"], kwargs["dataset"],
                                                     FLAGS.model_dir, kwargs["data_dir"])
    try:
        out = derive(FLAGS.search_result, FLAGS.model_dir, kwargs, FLAGS.num_archs)
    except (OSError, KeyError, ValueError) as e:
        raise app.UsageError(f"--search_result={FLAGS.search_result}: {e}")
    common.exit_if_preempted(out, "autogan-derive")
    print(f"{'rank':>4}  {'architecture':<32}{'IS':>8}{'FID':>9}")
    for row in out["archs"]:
        fid = "-" if row["fid"] is None else f"{row['fid']:.2f}"
        is_mean = "-" if row["is_mean"] is None else f"{row['is_mean']:.2f}"
        print(f"{row['rank']:>4}  {row['arch']:<32}{is_mean:>8}{fid:>9}")
    print(json.dumps({"best": out["best"]}))


def run():
    common.run(main)


if __name__ == "__main__":
    run()
