"""Facial-expression recognition TFX pipeline (FER2013, VGG16 / ResNet50)."""
from setuptools import find_packages, setup

setup(
    name="fer-pipeline",
    version="0.1.0",
    description="TFX pipeline for facial-expression recognition from image folders",
    python_requires=">=3.10,<3.13",  # the legacy stack on 3.10, the current one on 3.12
    packages=find_packages(include=["pipeline", "pipeline.*", "components", "components.*",
                                    "serving", "serving.*"]),
    package_data={"": ["*.pbtxt"]},
    # Versions live in requirements/<stack>.lock (installed by scripts/bootstrap.sh); these are the
    # direct imports only, unpinned, so `pip install -e .` into a locked env changes nothing.
    install_requires=["tfx", "tensorflow", "apache-beam", "keras-tuner", "numpy", "pillow",
                      "tensorflow-serving-api", "grpcio", "prometheus-client",
                      "opencv-python-headless", "pyyaml", "matplotlib"],
    entry_points={"console_scripts": [
        "fer-pipeline=pipeline.cli:main",
        "fer-serve=serving.server_cli:main",
        "fer-client=serving.client_cli:main",
        "fer-deploy=serving.deploy_cli:main",
    ]},
)
