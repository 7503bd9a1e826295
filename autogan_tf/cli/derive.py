"""autogan-derive: train each of a search's top architectures briefly and report the best.

    autogan-derive --search_result=/tmp/s/search_result.json --model_dir=/tmp/derive \
        --max_iters=2000 [training flags of autogan-train]

Each architecture trains in MODEL_DIR/rank_<i>/ (resumable); the table and
MODEL_DIR/derive_result.json list arch, IS and FID, best first: highest IS as in the paper,
or lowest FID with --select_by=fid.

Prints a table (rank, architecture, IS, FID) best first, then one JSON line
``{"best": row}``; a run stopped by a signal exits with status 75 (rerun to resume).
"""

import json

from absl import flags

from autogan_tf import config as config_lib
from autogan_tf.cli import common
from autogan_tf.config import TrainConfig

FLAGS = flags.FLAGS
common.define_runtime_flags()
config_lib.define_flags(TrainConfig, skip=("arch",))
flags.DEFINE_string("search_result", None, "search_result.json of autogan-search.")
flags.DEFINE_string("model_dir", None, "Directory for one training run per architecture.")
flags.DEFINE_integer("num_archs", 0, "Train only the first N architectures (0: all).")
flags.DEFINE_enum("select_by", "is", ["is", "fid"], "Which score picks the best: is (highest "
                  "Inception Score, the paper's choice) or fid (lowest FID).")
flags.mark_flags_as_required(["search_result", "model_dir"])


def main(argv):
    """Train the search's top architectures briefly (`search.derive.derive`) and print the ranking.

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    common.apply_runtime_flags()
    from autogan_tf.search import derive

    config = config_lib.values_from_flags(TrainConfig, FLAGS, skip=("arch",))
    conditional = derive.carry_conditional(
        FLAGS.search_result, FLAGS.conditional if FLAGS["conditional"].present else None)
    if conditional is not None:
        config["conditional"] = conditional
    out = derive.derive(FLAGS.search_result, FLAGS.model_dir, config, FLAGS.num_archs,
                        FLAGS.select_by)
    common.exit_if_preempted(out, "autogan-derive")
    print(f"{'rank':>4}  {'architecture':<32}{'IS':>8}{'FID':>9}")
    for row in out["archs"]:
        fid = "-" if row["fid"] is None else f"{row['fid']:.2f}"
        is_mean = "-" if row["is_mean"] is None else f"{row['is_mean']:.2f}"
        print(f"{row['rank']:>4}  {row['arch']:<32}{is_mean:>8}{fid:>9}")
    print(json.dumps({"best": out["best"]}))


def run():
    """Console script `autogan-derive`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
