# One role per job. Every policy is an aws_iam_policy_document scoped to the ARNs it needs.
# Resource "*" appears only for actions that support no resource-level permission, each
# marked with a comment; tests/delivery keeps that list explicit (WILDCARD_RESOURCE_ACTIONS).

# The pipeline's roles live in pipeline/ (shared by the environments); it reaches these
# roles, the service and the CodeDeploy group by the names in modules/naming.

# --- ECS task execution role: pull the image, read the secrets, write logs -------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = module.names.execution_role_name
  description        = "ECS agent: pulls the ${local.prefix} image, reads its secrets, writes its logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken supports no resource-level permission
  }

  statement {
    sid = "PullServiceImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchGetImage",
    ]
    resources = [data.aws_ecr_repository.service.arn]
    # ECR decrypts KMS-encrypted layers through its own grant on the registry's key.
  }

  statement {
    sid       = "WriteServiceLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.service.arn}:*"]
  }

  statement {
    sid       = "ReadTaskSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.task_secret_arns
  }

  statement {
    sid       = "DecryptTaskSecrets"
    actions   = ["kms:Decrypt"]
    resources = [module.kms.key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-image-read-secrets-write-logs"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- ECS task role: what the service itself calls --------------------------------------

resource "aws_iam_role" "task" {
  name               = module.names.task_role_name
  description        = "The ${local.prefix} service: item access to its DynamoDB table only"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid = "TableItemAccess"
    # TransactWriteItems / TransactGetItems have no IAM action of their own: each Put,
    # Update, Delete and ConditionCheck inside is authorised as PutItem, UpdateItem,
    # DeleteItem and ConditionCheckItem. DescribeTable: start-up check of the key schema.
    # Scan: only the one-time rollup build of a table the previous version wrote
    # (src/storage/dynamodb/build.rs); every other read is a GetItem, Query or BatchGetItem.
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:Query",
      "dynamodb:BatchGetItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DescribeTable",
      "dynamodb:Scan",
    ]
    resources = [aws_dynamodb_table.this.arn]
  }

  statement {
    sid       = "UseTableKeyThroughDynamoDB"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [module.kms.key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "dynamodb-table-items"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- VPC flow logs ------------------------------------------------------------------------

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${local.prefix}-flow-logs"
  description        = "VPC flow logs delivery to CloudWatch Logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = [
      aws_cloudwatch_log_group.flow_logs.arn,
      "${aws_cloudwatch_log_group.flow_logs.arn}:*",
    ]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

# --- CodeDeploy (blue/green only): shift traffic between the target groups -----------------

data "aws_iam_policy_document" "codedeploy_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codedeploy.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "codedeploy" {
  count = local.blue_green ? 1 : 0

  name               = "${local.prefix}-codedeploy"
  description        = "CodeDeploy: blue/green deployments of the ${local.prefix} ECS service"
  assume_role_policy = data.aws_iam_policy_document.codedeploy_assume.json
}

# What AWSCodeDeployRoleForECS grants, narrowed to this service, its listeners and alarms.
data "aws_iam_policy_document" "codedeploy" {
  statement {
    sid = "ServiceTaskSets"
    actions = [
      "ecs:DescribeServices",
      "ecs:CreateTaskSet",
      "ecs:UpdateServicePrimaryTaskSet",
      "ecs:DeleteTaskSet",
    ]
    resources = [
      "arn:${local.partition}:ecs:${local.region}:${local.account_id}:service/${module.names.cluster_name}/${module.names.service_name}",
      "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-set/${module.names.cluster_name}/${module.names.service_name}/*",
    ]
  }

  statement {
    sid = "DescribeLoadBalancing"
    actions = [
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules",
    ]
    resources = ["*"] # these Describe actions support no resource-level permission
  }

  statement {
    sid       = "ReadRollbackAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = [for a in local.rollback_alarm_names : "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${a}"]
  }

  statement {
    sid       = "ShiftTraffic"
    actions   = ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule"]
    resources = concat(local.serving_listener_arns, ["arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:listener-rule/app/${aws_lb.this.name}/*"])
  }

  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "NotifyAlarmTopic"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
  }
}

resource "aws_iam_role_policy" "codedeploy" {
  count = local.blue_green ? 1 : 0

  name   = "blue-green-ecs"
  role   = aws_iam_role.codedeploy[0].id
  policy = data.aws_iam_policy_document.codedeploy.json
}
