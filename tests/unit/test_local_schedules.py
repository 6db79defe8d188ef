"""EventBridge schedules of template.yaml, as the local stack reads and runs them."""

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from local import template
from local.scheduler import LocalScheduler, scheduled_event
from local.template import ScheduleSource, rate_seconds

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 days)", 172_800),
        ("cron(0 12 * * ? *)", None),
    ],
)
def test_rates_are_read_in_seconds(expression, seconds):
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    "expression", ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(1 week)", "every minute", ""]
)
def test_expressions_eventbridge_refuses_are_refused(expression):
    with pytest.raises(ValueError, match=r"expression|singular"):
        rate_seconds(expression)


def test_the_template_schedules_are_read_and_valid():
    schedules = template.load().schedules
    assert (
        ScheduleSource(
            function="OutboxSweeperFunction", name="EveryMinute", expression="rate(1 minute)", enabled=True
        )
        in schedules
    )
    assert {s.function for s in schedules} == {
        "OutboxSweeperFunction",
        "SquarePollerFunction",
        "TokenRefresherFunction",
        "IdempotencyCleanupFunction",
        "CustomerLinkerFunction",
        "RpaposSchedulerFunction",
    }
    assert all((rate_seconds(s.expression) or 0) > 0 for s in schedules)  # every one a rate(...)
    assert (
        ScheduleSource(
            function="CustomerLinkerFunction",
            name="EveryFiveMinutes",
            expression="rate(5 minutes)",
            enabled=True,
        )
        in schedules
    )


def test_schedule_and_schedule_v2_events_are_read_with_their_state(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(
        """
Resources:
  Job:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: job/
      Handler: app.handler
      Events:
        Hourly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 hour)
            State: DISABLED
        Daily:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
"""
    )

    schedules = {s.name: s for s in template.load(path).schedules}

    assert schedules["Hourly"] == ScheduleSource("Job", "Hourly", "rate(1 hour)", enabled=False)
    assert schedules["Daily"].enabled
    assert schedules["Daily"].rate_seconds is None


@pytest.mark.parametrize(
    ("folder", "function"),
    [("outbox_sweeper", "OutboxSweeperFunction"), ("customer_linker", "CustomerLinkerFunction")],
)
def test_the_sample_event_has_the_shape_the_scheduler_sends(folder, function):
    sample = json.loads((EVENTS / folder / "scheduled.json").read_text())
    sent = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/r", "123456789012", "us-east-1")

    assert set(sample) == set(sent)
    for event in (sample, sent):
        parsed = EventBridgeEvent(event)
        assert (parsed.detail_type, parsed.source, parsed.detail) == ("Scheduled Event", "aws.events", {})
    assert function in sample["resources"][0]


class Calls:
    def __init__(self, expected: int) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.done = threading.Event()
        self._expected = expected

    def __call__(self, function: str, event: dict[str, Any]) -> dict[str, str]:
        self.events.append((function, event))
        if len(self.events) >= self._expected:
            self.done.set()
        return {"ran": function}


def scheduler(invoke: Calls, *, timers: bool, enabled: bool = True) -> LocalScheduler:
    schedules = [ScheduleSource("Sweeper", "EveryMinute", "rate(1 minute)", enabled)]
    return LocalScheduler(
        schedules,
        invoke,
        stack_name="local",
        account="123456789012",
        region="us-east-1",
        rate_scale=0.001,  # 60 ms
        timers=timers,
    )


def test_a_scaled_timer_invokes_the_function_with_scheduled_events():
    calls = Calls(expected=2)
    running = scheduler(calls, timers=True)
    running.start()
    try:
        assert calls.done.wait(timeout=10)
    finally:
        running.stop()

    function, event = calls.events[0]
    assert function == "Sweeper"
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/local-SweeperEveryMinute"]
    assert running.stats[("Sweeper", "EveryMinute")].runs >= 2


@pytest.mark.parametrize(("timers", "enabled"), [(False, True), (True, False)])
def test_without_timers_or_when_disabled_a_schedule_runs_only_on_demand(timers, enabled):
    calls = Calls(expected=1)
    idle = scheduler(calls, timers=timers, enabled=enabled)

    assert idle.timed == []
    assert idle.run("Sweeper") == {"ran": "Sweeper"}
    assert [function for function, _ in calls.events] == ["Sweeper"]
    with pytest.raises(KeyError):
        idle.run("Nobody")
