"""The Markdown descriptions (``mlflow.note.content``) a user reads in the MLflow UI.

Pure string formatting: links are relative to the UI (``#/experiments/...``
and ``get-artifact?...``), so they work for ``mlflow ui`` on any host and
port and for a shared server alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

__all__ = ["EXPERIMENT_DESCRIPTION", "NOTE_RULE", "artifact_link", "individual_description",
           "prepend", "run_link",
           "search_description"]

EXPERIMENT_DESCRIPTION = """\
**Robust Architecture Search** (ras_deap): every search is one run; every network it \
trained is a child run nested under it (expand the search's row). \
The fitness is validation accuracy + robustness (accuracy on adversarial samples).

* **Find the best**: sort by `fitness` (descending), or search \
`tags.ras_deap.best = 'true'`. The search run's description names it and says how to \
load its retrained network (`mlflow.pytorch.load_model`); it is also on the *Models* page.
* **Charts** are grouped in sections: `population/` (per generation, on the search run), \
`architecture/`, `robustness/`, `spectrum/`, `training/`, `timing/`, `diag/` (constant \
bookkeeping) and `final/` (the best network retrained on the full training set).
* A child's **duration** is its real training and evaluation time; its `genetic_parent` \
param is the genome it was mutated from (tag `ras_deap.genetic_parent_run`: that \
evaluation's run) and `mutation_ops` the mutations applied.
* "Fittest" is the individual with the highest fitness: \
`population/accuracy_of_fittest` is *its* accuracy, not the population's highest \
(`population/accuracy_max`).
"""


def run_link(experiment_id: str, run_id: str, text: str | None = None) -> str:
    """A Markdown link to a run's page in the MLflow UI (model-training view)."""
    return (f"[{text or run_id}](#/experiments/{experiment_id}/runs/{run_id}"
            "?workflowType=machine_learning)")


def artifact_link(run_id: str, path: str) -> str:
    """The UI's address of a run artifact (usable as a Markdown image)."""
    return f"get-artifact?path={quote(path, safe='')}&run_uuid={run_id}"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "-"
    return f"{number:,.0f}" if number.is_integer() and abs(number) >= 100 else \
        f"{number:.{digits}f}"


def search_description(summary: Mapping[str, Any], *, experiment_id: str, run_id: str,
                       best_run_id: str | None, model_uri: str | None,
                       tracking_uri: str | None, figures: Sequence[str] = (),
                       registered: str | None = None) -> str:
    """The search run's description: the best individual, its numbers, the
    figures and how to load the retrained network."""
    best = summary.get("best_id", "?")
    where = run_link(experiment_id, best_run_id, f"`{best}`") if best_run_id else f"`{best}`"
    lines = [
        f"### Best architecture: {where}",
        f"Found in generation {summary.get('generation_found', '?')} of "
        f"{summary.get('generations', '?')} ({summary.get('evaluations', '?')} networks "
        "trained). It is the child run tagged `ras_deap.best = true`.",
        "",
        "| | during the search | retrained on the full training set"
        + ("" if summary.get("final_training", "standard") == "standard"
           else f", then {summary['final_training']} fine-tuned") + " |",
        "|---|---|---|",
        f"| fitness (accuracy + robustness) | {_num(summary.get('fitness'))} "
        f"| {_num(summary.get('final_fitness'))} |",
        f"| validation accuracy | {_num(summary.get('accuracy'))} "
        f"| {_num(summary.get('final_accuracy'))} |",
        f"| robustness | {_num(summary.get('robustness'))} "
        f"| {_num(summary.get('final_robustness'))} |",
        f"| test accuracy | | {_num(summary.get('final_test_accuracy'))} |",
        f"| parameters | {_num(summary.get('parameters'))} "
        f"| {_num(summary.get('final_parameters'))} |",
        "",
    ]
    if summary.get("final_failure"):
        lines += [f"The final retraining failed: `{summary['final_failure']}`.", ""]
    if model_uri:
        setup = (f'mlflow.set_tracking_uri("{tracking_uri}")\n' if tracking_uri else "")
        lines += [
            "#### Load the retrained network",
            "```python",
            "import mlflow",
            f"{setup}net = mlflow.pytorch.load_model(\"{model_uri}\")  # a torch.nn.Module",
            "logits = net(images)  # float32 (N, C, H, W) as in the dataset; see the signature",
            "```",
        ]
        if registered:
            lines += [f"Registered as `{registered}` in the model registry.", ""]
        lines += ["The genome (`best_model/best_genome.json`, rebuilds the network with "
                  "`ras_deap`) and its drawing are artifacts of this run.", ""]
    for path in figures:
        name = path.rsplit("/", 1)[-1]
        lines += [f"![{name}]({artifact_link(run_id, path)})", ""]
    lines += ["Per-generation charts: sections `population/`, `architecture/`, `spectrum/`, "
              "`timing/`. \"Fittest\" = highest fitness; `population/accuracy_of_fittest` is "
              "its accuracy, not the highest accuracy (`population/accuracy_max`)."]
    return "\n".join(lines)


def individual_description(*, generation: int, index: int, cluster: int | None,
                           genetic_parent: str | None, mutation_ops: Sequence[str],
                           experiment_id: str, parent_run_id: str | None = None,
                           reevaluation: bool = False, failure: str | None = None) -> str:
    """A child run's one-paragraph description (where it came from)."""
    text = f"Generation {generation}, individual {index}"
    if cluster is not None:
        text += f", cluster {cluster}"
    text += "."
    if reevaluation:
        text += (" A re-evaluation of the cluster's representative under this generation's "
                 "training schedule (no mutation).")
    elif genetic_parent:
        parent = (run_link(experiment_id, parent_run_id, f"`{genetic_parent}`")
                  if parent_run_id else f"`{genetic_parent}`")
        ops = ", ".join(f"`{op}`" for op in mutation_ops) or "no mutation"
        text += f" Mutated from {parent} by {ops}."
    else:
        text += " A random initial architecture."
    if failure:
        text += f" **Failed**: `{failure[:300]}` (fitness 0)."
    return text


NOTE_RULE = "\n\n---\n\n"  # between a note put above a run's description and the description


def prepend(note: str, own: str) -> str:
    """``note`` above a run's ``own`` description, once: a note put there by
    an earlier session (a resumed search) is replaced, not stacked."""
    if own.startswith(note[:24]) and NOTE_RULE in own:
        own = own.split(NOTE_RULE, 1)[1]
    return f"{note}{NOTE_RULE}{own}" if own else note
