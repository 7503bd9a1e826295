"""autogan-tf: AutoGAN neural architecture search for GANs in TensorFlow 2 / Keras 3."""
from setuptools import find_packages, setup

CONSOLE_SCRIPTS = [
    "autogan-summary=bin.summary:run",
    "autogan-fid-stats=bin.fid_stats:run",
    "autogan-fid=bin.fid:run",
    "autogan-train-classifier=bin.train_classifier:run",
    "autogan-search=bin.search:run",
    "autogan-train=bin.train:run",
    "autogan-derive=bin.derive:run",
    "autogan-evaluate=bin.evaluate:run",
    "autogan-export=bin.export:run",
    "autogan-sample=bin.sample:run",
    "autogan-quickstart=bin.quickstart:run",
]

setup(
    name="autogan-tf",
    version="0.1.0",
    description=__doc__,
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["autogan_tf", "autogan_tf.*", "bin"]),
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "absl-py",
        "numpy",
        "scipy",
        "pillow",
    ],
    extras_require={
        "serving": ["tensorflow-serving-api", "grpcio"],
        "dev": ["pytest", "pytest-xdist", "hypothesis", "tensorflow-serving-api", "grpcio"],
    },
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
