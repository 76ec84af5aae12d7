"""Beam runner profiles: `--beam-runner direct|portable|flink|spark|dataflow` -> the Beam pipeline
arguments of every Beam component (ImageFolderExampleGen, StatisticsGen, Transform, the
Evaluators), and the refusal, before anything runs, of a runner without the arguments it needs.

Both runners (local and Kubeflow) reach this module through `configs.pipeline_arguments` only.
No Beam import here: the command line reads it before TensorFlow or Beam is loaded, so the
user's `--beam-arg` values are read with the small parser below (`--name=value`, or
`--name value`).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

DIRECT, PORTABLE, FLINK, SPARK, DATAFLOW = "direct", "portable", "flink", "spark", "dataflow"
DEFAULT_RUNNER = DIRECT
DIRECT_RUNNER = "DirectRunner"   # Beam's default --runner

# Beam's option names, each once.
RUNNER = "runner"
JOB_ENDPOINT = "job_endpoint"
ENVIRONMENT_TYPE = "environment_type"
ENVIRONMENT_CONFIG = "environment_config"
SDK_CONTAINER_IMAGE = "sdk_container_image"
SDK_LOCATION = "sdk_location"
SETUP_FILE = "setup_file"
FLINK_MASTER = "flink_master"
SPARK_MASTER_URL = "spark_master_url"
PROJECT = "project"
REGION = "region"
TEMP_LOCATION = "temp_location"

# Beam's environment types (--environment_type) and what each reads from --environment_config.
LOOPBACK, DOCKER, EXTERNAL, PROCESS = "LOOPBACK", "DOCKER", "EXTERNAL", "PROCESS"
ENVIRONMENT_TYPES = (LOOPBACK, DOCKER, EXTERNAL, PROCESS)
ENVIRONMENT_CONFIG_HELP = {
    DOCKER: "the SDK container image",
    EXTERNAL: "the address of an SDK worker pool, e.g. localhost:50000",
    PROCESS: 'a JSON object naming the worker boot command, e.g. {"command": "/opt/apache/'
             'beam/boot"}',
}

# Examples shown in the refusal, by option.
EXAMPLES = {
    JOB_ENDPOINT: "HOST:8099",
    ENVIRONMENT_TYPE: "LOOPBACK",
    SDK_CONTAINER_IMAGE: "REGISTRY/fer-pipeline:TAG",
    FLINK_MASTER: "HOST:8081",
    SPARK_MASTER_URL: "spark://HOST:7077",
    PROJECT: "PROJECT",
    REGION: "REGION",
    TEMP_LOCATION: "gs://BUCKET/tmp",
    ENVIRONMENT_CONFIG: "localhost:50000",
}


class BeamRunnerError(ValueError):
    """A runner profile without the arguments it needs, or Beam arguments that contradict it.
    configs turns it into a PipelineArgumentError."""


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One thing a runner needs: any one of `options` (Beam option names, without dashes)."""

    what: str
    options: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RunnerProfile:
    name: str
    beam_runner: Optional[str]        # --runner's value; None: Beam's default (DirectRunner)
    description: str
    requires: Tuple[Requirement, ...] = ()
    defaults: Tuple[Tuple[str, str], ...] = ()    # set when the user does not set them
    portable_environment: bool = False            # SDK workers per --environment_type
    needs_sdk_image: bool = False                 # workers run the pipeline's image


_SDK_IMAGE = Requirement("the SDK container image (the pipeline image; workers run it)",
                         (SDK_CONTAINER_IMAGE,))

PROFILES: Mapping[str, RunnerProfile] = {
    DIRECT: RunnerProfile(
        DIRECT, None, "Beam's DirectRunner in this process (the run profile's "
        "--direct_running_mode and --direct_num_workers)"),
    PORTABLE: RunnerProfile(
        PORTABLE, "PortableRunner", "any Beam job service (Job API), e.g. Beam's own local one, "
        "or a Flink or Spark job server",
        requires=(Requirement("the job service's address", (JOB_ENDPOINT,)),
                  Requirement("where the SDK workers run (LOOPBACK: in this process)",
                              (ENVIRONMENT_TYPE,))),
        portable_environment=True),
    FLINK: RunnerProfile(
        FLINK, "FlinkRunner", "a Flink cluster (its REST address, or a Beam Flink job server)",
        requires=(Requirement("the Flink master, or a Beam Flink job server",
                              (FLINK_MASTER, JOB_ENDPOINT)),),
        defaults=((ENVIRONMENT_TYPE, DOCKER), (SDK_LOCATION, "container")),
        portable_environment=True, needs_sdk_image=True),
    SPARK: RunnerProfile(
        SPARK, "SparkRunner", "a Spark cluster (its master URL, or a Beam Spark job server)",
        requires=(Requirement("the Spark master, or a Beam Spark job server",
                              (SPARK_MASTER_URL, JOB_ENDPOINT)),),
        defaults=((ENVIRONMENT_TYPE, DOCKER), (SDK_LOCATION, "container")),
        portable_environment=True, needs_sdk_image=True),
    DATAFLOW: RunnerProfile(
        DATAFLOW, "DataflowRunner", "Google Cloud Dataflow",
        requires=(Requirement("the Google Cloud project", (PROJECT,)),
                  Requirement("the Dataflow region", (REGION,)),
                  Requirement("a Cloud Storage folder for temporary files", (TEMP_LOCATION,)),
                  _SDK_IMAGE),
        defaults=((SDK_LOCATION, "container"),),
        needs_sdk_image=True),
}
NAMES = tuple(PROFILES)


def describe() -> str:
    """The runners and what each needs, for --help."""
    parts = []
    for p in PROFILES.values():
        needs = ", ".join(" or ".join(f"--{o}" for o in r.options) for r in p.requires)
        image = f"{', ' if needs else ''}--{SDK_CONTAINER_IMAGE}" if (
            p.needs_sdk_image and _SDK_IMAGE not in p.requires) else ""
        parts.append(f"{p.name}: {p.description}" + (f" (needs {needs}{image})"
                                                       if needs or image else ""))
    return "; ".join(parts)


def parse_beam_args(args: Sequence[str]) -> Dict[str, Optional[str]]:
    """Beam's `--name=value` / `--name value` / `--flag` arguments -> {name: value or None}; the
    last one wins, as in Beam."""
    out: Dict[str, Optional[str]] = {}
    items = list(args)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if not item.startswith("--"):
            continue
        name, sep, value = item[2:].partition("=")
        if not sep:
            if i < len(items) and not items[i].startswith("--"):
                value = items[i]
                i += 1
            else:
                value = None
        out[name.replace("-", "_")] = value
    return out


def beam_pipeline_args(runner: str, direct_args: Sequence[str], user_args: Sequence[str],
                       sdk_image: Optional[str] = None,
                       setup_file: Optional[str] = None) -> List[str]:
    """Every Beam pipeline argument of a run on `runner`; raises BeamRunnerError naming each
    missing argument and how to pass it.

    `direct_args`: the run profile's DirectRunner settings (used by `direct` only).
    `user_args`: the user's `--beam-arg`s; they come last, so they win.
    `sdk_image`: the pipeline's container image where the runner knows it (the Kubeflow
    compiler's --image): the SDK workers' image unless the user names another.
    `setup_file`: shipped to workers that run this machine's Python (not to those running an
    image, which has the project installed).
    """
    profile = PROFILES.get(runner)
    if profile is None:
        raise BeamRunnerError(f"unknown Beam runner {runner!r}; choose one of {list(NAMES)}")
    given = parse_beam_args(user_args)
    problems = []
    if RUNNER in given and given[RUNNER] != (profile.beam_runner or DIRECT_RUNNER):
        problems.append(f"--beam-arg=--runner={given[RUNNER]} contradicts --beam-runner "
                        f"{runner}: choose the runner with --beam-runner "
                        f"({'|'.join(NAMES)}) and leave --runner out")
    added: List[str] = []

    def add(name: str, value: str) -> None:
        if name not in given:
            given[name] = value
            added.append(f"--{name}={value}")

    if profile.beam_runner:
        add(RUNNER, profile.beam_runner)
    for name, value in profile.defaults:
        add(name, value)
    image = given.get(SDK_CONTAINER_IMAGE) or sdk_image
    env_type = given.get(ENVIRONMENT_TYPE)
    if profile.portable_environment and env_type:
        env_type = env_type.upper()
        if env_type not in ENVIRONMENT_TYPES:
            problems.append(f"--environment_type={given[ENVIRONMENT_TYPE]}: choose one of "
                            f"{', '.join(ENVIRONMENT_TYPES)}")
        elif env_type == DOCKER and image:
            add(ENVIRONMENT_CONFIG, image)   # a portable runner's DOCKER image
    if image and (profile.needs_sdk_image or env_type == DOCKER):
        add(SDK_CONTAINER_IMAGE, image)      # also tells TFX the workers have the code
    for requirement in profile.requires:
        if not any(given.get(o) for o in requirement.options):
            problems.append(_missing(runner, requirement))
    if profile.portable_environment and env_type in ENVIRONMENT_CONFIG_HELP and not (
            given.get(ENVIRONMENT_CONFIG)):
        if env_type == DOCKER:
            problems.append(_missing(runner, _SDK_IMAGE))
        elif env_type != DOCKER:
            problems.append(
                f"--environment_type={env_type} needs --{ENVIRONMENT_CONFIG} "
                f"({ENVIRONMENT_CONFIG_HELP[env_type]}): pass "
                f"--beam-arg=--{ENVIRONMENT_CONFIG}=...")
    if problems:
        raise BeamRunnerError(f"--beam-runner {runner}: " + "; ".join(problems))
    args = list(added)
    if runner == DIRECT:
        args += list(direct_args)
    if setup_file and not given.get(SDK_CONTAINER_IMAGE) and SETUP_FILE not in given:
        args.append(f"--{SETUP_FILE}={setup_file}")
    return args + list(user_args)


def _missing(runner: str, requirement: Requirement) -> str:
    passes = " or ".join(f"--beam-arg=--{o}={EXAMPLES.get(o, '...')}"
                         for o in requirement.options)
    names = " or ".join(f"--{o}" for o in requirement.options)
    hint = ""
    if requirement is _SDK_IMAGE:
        hint = " (the Kubeflow compiler passes its --image)"
    return f"missing {names} ({requirement.what}): pass {passes}{hint}"
