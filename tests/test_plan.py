"""The run plan (facelab/runs/plan.py) and the budget schedule it drives in the swap trainer."""

from __future__ import annotations

import math

import pytest

from facelab.runs.plan import FLOOR, WARMUP, Plan, budget_lr_factor, plan_for_run


def test_budget_lr_warms_up_then_decays_to_the_floor() -> None:
    assert budget_lr_factor(0.0) == pytest.approx(0.1)
    assert budget_lr_factor(WARMUP) == pytest.approx(1.0)
    assert budget_lr_factor(1.0) == pytest.approx(FLOOR)
    xs = [budget_lr_factor(p / 100) for p in range(int(WARMUP * 100) + 1, 101)]
    assert all(a >= b for a, b in zip(xs, xs[1:]))  # monotone decay after the warm-up
    assert budget_lr_factor(-1) == budget_lr_factor(0) and budget_lr_factor(2) == budget_lr_factor(1)


def test_iteration_plan_progress_and_resume() -> None:
    plan, minutes = plan_for_run(100, 300, None, None)
    assert (plan.start_iter, plan.end_iter, minutes) == (100, 300, None)
    assert plan.progress(200, 5.0) == 0.5 and plan.progress(400, 0) == 1.0
    # a killed run resumed with the same limit continues the plan; another limit starts a new one
    again, _ = plan_for_run(180, 300, None, plan.state(12.0))
    assert again.start_iter == 100 and again.progress(200, 0) == 0.5
    new, _ = plan_for_run(180, 500, None, plan.state(12.0))
    assert new.start_iter == 180


def test_minutes_plan_resumes_with_the_time_left() -> None:
    plan, minutes = plan_for_run(0, None, 10.0, None)
    assert minutes == 10.0 and plan.progress(50, 150.0) == pytest.approx(0.25)
    saved = plan.state(240.0)  # killed after 4 of 10 minutes
    again, left = plan_for_run(70, None, 10.0, saved)
    assert left == pytest.approx(6.0) and again.progress(70, 60.0) == pytest.approx(0.5)
    other, left2 = plan_for_run(70, None, 20.0, saved)
    assert left2 == 20.0 and other.done_seconds == 0 and other.start_iter == 70
    done, left3 = plan_for_run(70, None, 10.0, Plan(0, seconds=600.0, done_seconds=600.0).state(0))
    assert left3 == 10.0 and done.done_seconds == 0  # a finished plan is not continued


def test_plan_state_is_json_friendly() -> None:
    import json

    s = Plan(3, end_iter=9).state(1.5)
    assert json.loads(json.dumps(s)) == s and math.isclose(s["done_seconds"], 1.5)
