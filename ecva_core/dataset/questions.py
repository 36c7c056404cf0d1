"""The benchmark's questions and the QA items each annotated video yields.

The scored wordings are the prompts of the official ECVA inference outputs (VideoLLaMA runs);
``PROBE_QUESTIONS`` are the hallucination-probe variants that ask the model to answer ``None``
when it cannot tell. Classification and Timestamp wordings follow the official prompts too.
"""

from __future__ import annotations

from ecva_core.dataset.cells import format_categories, format_moments
from ecva_core.schema import SCORED_TASKS, QAItem, Task, VideoRecord

QUESTIONS: dict[Task, str] = {
    Task.DESCRIPTION: (
        "Give a detailed description of the anomalous segment in the video. "
        "Please remember to describe the details of the incident."
    ),
    Task.CAUSE: "Please reason logically and give the root cause of the anomalies in the video in detail.",
    Task.RESULT: (
        "Please reason logically and give a detailed and organized account of the final outcome "
        "caused by the unusual events in the video."
    ),
    Task.CLASSIFICATION: (
        "Watching the video, please identify and categorize any anomalies or unusual events based on "
        "the categories provided below. Ensure you are specific in your description and refer to the "
        "categories and sub-categories accurately.\n"
        "    **Categories for Anomaly Detection**:\n"
        "    1. **Fighting**\n"
        "    2. **Animals Hurting People**\n"
        "    3. **Water Incidents**\n"
        "    4. **Vandalism**\n"
        "    5. **Traffic Accidents**\n"
        "    6. **Robbery**\n"
        "    7. **Theft**\n"
        "    8. **Pedestrian Incidents**\n"
        "    9. **Fire**\n"
        "    10. **Traffic Violations**\n"
        "    11. **Forbidden to Burn**\n"
        "    After viewing, please write down the category number[JUST A NUMBER!!!!!!!!!!FROM 1 - 11], "
        "the output format is as follows:\n"
        "    [XX]\n"
        "    "
    ),
    Task.TIMESTAMP: (
        "Locate the position of the anomalous segment in the video, e.g. how many s to how many s, given as [xxxx,xxxx]"
    ),
}

_NONE_CLAUSE = (
    "Notice if you cannot answer based on the content of the video, you only need to answer with one word None"
)

def is_probe_prompt(prompt: str) -> bool:
    """True for a prompt that asks the model to answer ``None`` when it cannot tell (the probe wording)."""
    return "answer with one word none" in " ".join(prompt.lower().split())


PROBE_QUESTIONS: dict[Task, str] = {
    Task.DESCRIPTION: QUESTIONS[Task.DESCRIPTION] + _NONE_CLAUSE,
    Task.CAUSE: (
        "Please analyze the content of the video and comprehensively summarize the reasons causing the "
        "abnormal events. Ensure that you cover all possible reasons for the abnormal events as "
        "comprehensively as possible.\n"
        "                The output format must strictly follow the following formats:1.xxxx\n"
        "2.xxxxx\n"
        "For example,1.The quarrel between the two men became more and more serious.\n"
        "2.The car that collided was speeding.\n"
        "3.The thief wanted to steal valuables." + _NONE_CLAUSE + ".\nFor example,None"
    ),
    Task.RESULT: (
        "Please analyze the content of the video and comprehensively summarize the outcomes caused by the "
        "abnormal events. Ensure that you cover all abnormal events and their resulting outcomes as "
        "comprehensively as possible.\n"
        "                The output format must strictly follow the following formats:1.xxxx\n"
        "2.xxxxx\n"
        "For example,1.The vehicle was badly damaged.\n"
        "2.The window of the car was broken by the impact.\n"
        "3.The store's window was shattered.\n"
        "4.Several valuable items were stolen." + _NONE_CLAUSE + ".\nFor example,None"
    ),
}

AUX_TASKS: tuple[Task, ...] = (Task.CLASSIFICATION, Task.TIMESTAMP)


def question_for(task: Task, probe: bool = False) -> str:
    """The benchmark's wording for a task (the probe variant asks for ``None`` when unsure)."""
    if probe and task in PROBE_QUESTIONS:
        return PROBE_QUESTIONS[task]
    return QUESTIONS[task]


def expert_answer(record: VideoRecord, task: Task) -> str:
    """The annotated answer for a task, in the benchmark's formats; empty when not annotated."""
    annotation = record.annotation
    if task is Task.DESCRIPTION:
        return annotation.description
    if task is Task.CAUSE:
        return annotation.reason
    if task is Task.RESULT:
        return annotation.result
    if task is Task.CLASSIFICATION:
        return format_categories(annotation.categories)
    return format_moments(annotation.moments)


def qa_items_for(record: VideoRecord, tasks: tuple[Task, ...] | None = None) -> list[QAItem]:
    """The record's QA items: Description, Cause, Result, then Classification and Timestamp.

    Unusable videos yield none; a task whose answer was not annotated (or did not parse) is left out.
    """
    if not record.usable:
        return []
    wanted = tasks if tasks is not None else SCORED_TASKS + AUX_TASKS
    items = []
    for task in wanted:
        answer = expert_answer(record, task)
        if answer:
            items.append(QAItem(record.video_id, task, QUESTIONS[task], answer, tuple(record.annotation.key_phrases)))
    return items
