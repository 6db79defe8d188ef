"""Step Functions tasks of an RPApos sync run (statemachine/rpapos_sync.asl.json): the input's
action says which - attach, step (one page), park, finalize or fail."""

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.rpapos.tasks import TaskInput, sync_tasks_from_settings
from pos_gateway.settings import RpaposSyncSettings

logger = Logger()
tracer = Tracer()
tasks = sync_tasks_from_settings(RpaposSyncSettings.from_env(), boto3.client("stepfunctions"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    task = TaskInput.model_validate(event)
    logger.append_keys(sync_run_id=str(task.sync_run_id), action=task.action)
    return tasks.run(task)
