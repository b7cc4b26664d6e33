"""The arrival stream: which agent asks what, and when, as a pure function of the file.

Every policy of an experiment runs the same :class:`Task` list, so policies are compared on
identical work. A task's prompt carries its tag (``[a17.t0]``), which ties each job the
server creates back to its task from the server's own records.

Example::

    tasks = plan_tasks(spec, load_timing())
    tasks[0].prompt   # 'What is the price of ETH? [a0.t0]'
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from mockbankr.errors import ConfigError
from mockbankr.experiments.spec import ExperimentSpec
from mockbankr.timing import TimingTable

__all__ = ["Task", "category_prompt", "plan_tasks", "task_of_prompt"]

#: A prompt per built-in category; other categories use their first working keyword.
_PROMPTS = {
    "price": "What is the price of ETH?",
    "balance": "What is my wallet balance on Base?",
    "swap": "Swap 10 USDC for ETH on Base",
    "analysis": "Give me a deep dive on ETH sentiment",
    "general": "Hello, what can you do?",
}
_TAG = re.compile(r" \[a(\d+)\.t(\d+)\]$")


@dataclass(frozen=True, slots=True)
class Task:
    """One result an agent wants: the ``index``-th prompt of agent ``agent``.

    ``at`` is the planned simulated offset (seconds from the run's start) at which the
    agent wants to ask; an agent asks its tasks one after another, never before ``at``.
    """

    agent: int
    index: int
    at: float
    category: str
    prompt: str

    @property
    def tag(self) -> str:
        return f"a{self.agent}.t{self.index}"


def category_prompt(table: TimingTable, category: str) -> str:
    """A prompt the table classifies as ``category``."""
    candidates = [_PROMPTS[category]] if category in _PROMPTS else []
    candidates += [f"Please {word.strip()} this" for word in table[category].keywords]
    for prompt in candidates:
        if table.classify(prompt) == category:
            return prompt
    if category == table.default:
        return _PROMPTS["general"]
    raise ConfigError(f"no prompt of category {category!r} classifies as such in this table")


def task_of_prompt(prompt: str) -> tuple[int, int] | None:
    """``(agent, index)`` of a tagged prompt, or ``None``."""
    found = _TAG.search(prompt)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _arrivals(spec: ExperimentSpec, rng: random.Random) -> list[float]:
    count = spec.agent_count
    duration = spec.experiment.duration_s
    if spec.fleet.arrival == "constant" or duration == 0:
        return [duration * i / count for i in range(count)]
    # Poisson: exponential gaps at the mean rate, squeezed into the window if they overrun.
    times: list[float] = []
    t = 0.0
    for _ in range(count):
        t += rng.expovariate(count / duration)
        times.append(t)
    if times[-1] > duration:
        times = [x * duration / times[-1] for x in times]
    return times


def plan_tasks(spec: ExperimentSpec, table: TimingTable) -> list[Task]:
    """Every task of the experiment, ordered by planned time, then agent, then index."""
    rng = random.Random(spec.experiment.seed)
    categories = list(spec.fleet.mix)
    weights = [spec.fleet.mix[name] for name in categories]
    prompts = {name: category_prompt(table, name) for name in categories}
    tasks: list[Task] = []
    for agent, start in enumerate(_arrivals(spec, rng)):
        for index in range(spec.fleet.tasks_per_agent):
            category = rng.choices(categories, weights)[0]
            tasks.append(
                Task(
                    agent=agent,
                    index=index,
                    at=round(start + index * spec.fleet.task_every_s, 6),
                    category=category,
                    prompt=f"{prompts[category]} [a{agent}.t{index}]",
                )
            )
    tasks.sort(key=lambda task: (task.at, task.agent, task.index))
    return tasks
