"""``kubectl iter8 launch``: validate an experiment and run it, here or in a cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import (
    AliasedOption,
    CLIState,
    group_option,
    kube_options,
    local_option,
    pass_state,
    run_dir_option,
)

if TYPE_CHECKING:
    from ..experiment import Experiment, PreparedTask
    from ..kube import KubeOptions


@click.command()
@local_option
@click.option(
    "-f",
    "--file",
    "files",
    cls=AliasedOption,
    aliases=["--values"],
    multiple=True,
    metavar="FILE",
    help="Experiment or chart-values YAML ('-' for standard input); repeatable, merged in order.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a value, Helm style (tasks={http,assess}, http.url=URL, spec[0].with.qps=5), typed as Helm "
    "types it (numbers, true/false, null); repeatable.",
)
@click.option(
    "--set-string",
    "set_strings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Like --set, but every value stays a string; repeatable.",
)
@click.option(
    "--set-file",
    "set_files",
    multiple=True,
    metavar="KEY=PATH",
    help="Set a value to the contents of a file (at most 1 MiB); repeatable.",
)
@click.option(
    "--set-json",
    "set_jsons",
    multiple=True,
    metavar="KEY=JSON",
    help="Set a value from JSON (or merge a whole JSON object); repeatable. Order as Helm: -f files, "
    "--set-json, --set, --set-string, --set-file.",
)
@run_dir_option
@group_option
@kube_options
@click.option(
    "--image",
    envvar="ITER8_IMAGE",
    help="Image of the Job that runs the experiment in the cluster (wins over the chart value iter8Image).",
)
@click.option(
    "--schedule",
    metavar="CRON",
    help="Run in the cluster on this cron schedule (a CronJob), keeping each loop's results; wins over "
    "the chart values runner=cronjob and cronjobSchedule.",
)
@click.option(
    "--deadline",
    metavar="DURATION",
    help="How long the Job may run before Kubernetes stops it (e.g. 30m; 0: never; default: derived "
    "from the tasks' durations and timeouts).",
)
@click.option(
    "--dry-run",
    cls=AliasedOption,
    aliases=["--dry"],
    is_flag=True,
    help="Validate and print what would be run or created; change nothing.",
)
@pass_state
def launch(
    state: CLIState,
    local: bool,
    files: tuple[str, ...],
    sets: tuple[str, ...],
    set_strings: tuple[str, ...],
    set_files: tuple[str, ...],
    set_jsons: tuple[str, ...],
    run_dir: str | None,
    group: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    image: str | None,
    schedule: str | None,
    deadline: str | None,
    dry_run: bool,
) -> None:
    """Validate an experiment and run it.

    \b
    With --local the experiment runs here and its result goes to DIR/experiment.yaml:
      kubectl iter8 launch --local -f experiment.yaml
      kubectl iter8 launch --local --set "tasks={http,assess}" --set http.url=http://127.0.0.1:8080/get \\
          --set assess.SLOs.upper.http/latency-mean=50
    Without it, the experiment runs in the cluster as a Job, stored in the group's Secret:
      kubectl iter8 launch -f experiment.yaml -g checkout -n shop
    """
    from ..errors import UsageError
    from ..experiment import prepare
    from ..kube import KubeOptions
    from ..values import ValueFlags, load_launch

    hooks = state.require_hooks()
    flags = ValueFlags(files, sets, set_strings, set_files, set_jsons)
    experiment, settings = load_launch(flags, hooks.tasks)
    prepared = prepare(experiment, hooks.tasks)
    options = KubeOptions(kubeconfig, context, namespace)
    if local:
        if schedule or image or deadline is not None:
            raise UsageError(
                "--schedule, --image and --deadline are for experiments in a cluster; drop them or --local"
            )
        if settings.cluster_only():
            # Iter8's local launch rendered only the experiment from the same values files.
            click.echo(
                f"warning: {', '.join(settings.cluster_only())}: chart values for an experiment in a "
                "cluster; ignored with --local",
                err=True,
            )
        _refuse_pods_here(prepared)
        _launch_local(state, experiment, prepared, run_dir or ".", options, dry_run)
        return
    if run_dir is not None:
        raise UsageError("--run-dir goes with --local")
    if settings.runner == "none":
        raise UsageError(
            "runner=none: Iter8's chart made no Job with it; use --local to run the experiment here, "
            "or runner=job (the default) to run it in the cluster"
        )
    # The command line is more specific than a values file: --schedule and --image win.
    schedule = schedule if schedule is not None else settings.schedule
    image = image or settings.image
    if schedule is not None and len(schedule.split()) != 5:
        raise UsageError(
            f"--schedule {schedule!r}: expected a cron schedule of five fields, e.g. '*/10 * * * *'"
        )
    from .. import cluster
    from ..kube import Kube

    deadline_seconds = _deadline_seconds(deadline)
    group = cluster.check_group(group)
    pod = cluster.RunnerPod(
        settings.service_account, settings.resources, settings.log_level, settings.metrics_server_url
    )
    with Kube(options) as kube:
        ns = kube.namespace
        if dry_run:
            from ..storage import dump_yaml

            objects = cluster.manifests(
                experiment, prepared, group=group, namespace=ns, revision=1,
                image=image or cluster.DEFAULT_IMAGE, schedule=schedule, deadline=deadline_seconds,
                runner=pod,
            )  # fmt: skip
            click.echo("---\n".join(dump_yaml(obj) for _, obj in objects), nl=False)
            return
        revision = cluster.launch(
            kube, experiment, prepared, group=group, namespace=ns, image=image or cluster.DEFAULT_IMAGE,
            schedule=schedule, deadline=deadline_seconds, runner=pod,
        )  # fmt: skip
    where = f"-g {group} -n {ns}"
    click.echo(f'experiment group "{group}" launched in namespace "{ns}" (revision {revision})')
    click.echo(f"follow it with: kubectl iter8 assert {where} -c completed,nofailure --timeout 5m")


def _refuse_pods_here(prepared: list[PreparedTask]) -> None:
    """``pods`` (a load spread over shard pods) needs a cluster; here, ``workers`` spreads it over cores."""
    from ..errors import UsageError

    for task in prepared:
        pods = getattr(task.task.inputs, "pods", 1)
        if isinstance(pods, int) and pods > 1:
            raise UsageError(
                f"{task.label}: pods: {pods} pods need an experiment in a cluster (launch without "
                "--local); here, use workers to spread the load over this machine's cores"
            )


def _deadline_seconds(value: str | None) -> int | None:
    """``--deadline`` in whole seconds (rounded up); None when not given, 0 for no deadline."""
    import math

    from ..durations import parse_duration
    from ..errors import UsageError

    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise UsageError(
            f"--deadline: {value!r} is not a duration (use e.g. 30m, 1h30m; 0 for none)"
        ) from None
    return math.ceil(seconds)


def _launch_local(
    state: CLIState,
    experiment: Experiment,
    prepared: list[PreparedTask],
    run_dir: str,
    options: KubeOptions,
    dry_run: bool,
) -> None:
    from ..aio import run_async
    from ..errors import Iter8Error
    from ..runner import Runner
    from ..storage import LocalStore, dump_yaml

    if dry_run:
        click.echo(dump_yaml(experiment.document()), nl=False)
        return
    store = LocalStore(run_dir)
    store.check_writable()
    runner = Runner(
        experiment, prepared, store, state.require_hooks(), work_dir=store.run_dir, kube_options=options
    )
    result = run_async(runner.run())
    if result.failure:
        raise Iter8Error(f"experiment failed: {result.failure_message} (result in {store.description})")
    done = result.num_completed_tasks
    click.echo(f"experiment completed: {done} of {len(prepared)} tasks; result in {store.description}")
