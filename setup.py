"""autogan-tf: AutoGAN neural architecture search for GANs in TensorFlow 2 / Keras 3."""
from setuptools import find_packages, setup

CONSOLE_SCRIPTS = [
    "autogan-summary=autogan_tf.cli.summary:run",
    "autogan-fid-stats=autogan_tf.cli.fid_stats:run",
    "autogan-fid=autogan_tf.cli.fid:run",
    "autogan-train-classifier=autogan_tf.cli.train_classifier:run",
    "autogan-search=autogan_tf.cli.search:run",
    "autogan-train=autogan_tf.cli.train:run",
    "autogan-derive=autogan_tf.cli.derive:run",
    "autogan-evaluate=autogan_tf.cli.evaluate:run",
    "autogan-export=autogan_tf.cli.export:run",
    "autogan-sample=autogan_tf.cli.sample:run",
    "autogan-quickstart=autogan_tf.cli.quickstart:run",
    "autogan-import=autogan_tf.cli.import_checkpoint:run",
]

setup(
    name="autogan-tf",
    version="0.1.0",
    description=__doc__,
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # The flagfiles live in flags/ at the top of the checkout and install as autogan_tf.flags.
    packages=find_packages(include=["autogan_tf", "autogan_tf.*"]) + ["autogan_tf.flags"],
    package_dir={"autogan_tf.flags": "flags"},
    package_data={"autogan_tf.flags": ["*.cfg"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.10,<3.16",  # keras_compat reads two private attributes: checked up to 3.15
        "tensorflow-datasets>=4.9",
        # Export writes TF Serving warmup records with its protos (the gRPC client does not
        # need them: serving_proto); it adds no package TensorFlow does not already pull in.
        "tensorflow-serving-api",
        "absl-py",
        "numpy",
        "scipy>=1.13",  # 1.11.2-1.12: sqrtm returns large imaginary parts, FID breaks
        "pillow",
    ],
    extras_require={
        "tensorboard": ["tensorboard"],  # to view MODEL_DIR/logs; writing them needs nothing
        "serving": [],  # kept for old install lines: the serving client is in the core now
        "dev": ["pytest", "pytest-xdist", "hypothesis"],
        "docs": ["mkdocs>=1.6"],  # mkdocs build --strict builds docs/ into a site
        "experiments": ["matplotlib"],  # the plots of experiments/ (not the package)
    },
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
