# lambda_delete_enabled: DELETE /picus/* is served by the telemetry-lambda function (same
# storage code as the service, DynamoDB backend) behind the ALB; every other route stays
# on the service. Off by default.
#
# Architecture x86_64: the binary is built by the same x86_64 CodeBuild project as the
# image (buildspec.yml, in an Amazon Linux 2023 container so it links against the
# runtime's glibc); arm64 would be ~20 % cheaper per GB-second but needs a second,
# arm64 build host or a cross toolchain for one small route.

locals {
  lambda_enabled = var.lambda_delete_enabled
}

resource "aws_cloudwatch_log_group" "lambda" {
  count = local.lambda_enabled ? 1 : 0

  name              = "/aws/lambda/${module.names.lambda_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "lambda" {
  count = local.lambda_enabled ? 1 : 0

  name               = "${local.prefix}-picus-delete"
  description        = "The DELETE /picus/* function of ${local.prefix}: deletes items from its table, nothing else"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid = "DeleteItemsOnly"
    # telemetry-lambda's only call: DeleteItem with ReturnValues=ALL_OLD (no old item: 404),
    # authorised as dynamodb:DeleteItem alone. Opening the store makes no call at all (no
    # DescribeTable, no reads; src/storage/dynamodb/mod.rs, DynamoStore::connect).
    actions   = ["dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.this.arn]
  }

  statement {
    sid       = "UseTableKeyThroughDynamoDB"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.kms.key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${module.names.lambda_function_name}:*"]
  }
}

resource "aws_iam_role_policy" "lambda" {
  count = local.lambda_enabled ? 1 : 0

  name   = "delete-items"
  role   = aws_iam_role.lambda[0].id
  policy = data.aws_iam_policy_document.lambda.json
}

resource "aws_lambda_function" "picus_delete" {
  #checkov:skip=CKV_AWS_117:Not in the VPC: attaching it needs ec2 network-interface permissions on "*" for a role that should only delete items; it reaches DynamoDB over TLS with IAM.
  #checkov:skip=CKV_AWS_116:Invoked synchronously by the ALB, which gets the error; a dead-letter queue only applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile in the pipeline; the zip comes from this repository's pipeline build, stored encrypted in its artifact bucket.
  #checkov:skip=CKV_AWS_50:X-Ray tracing needs xray:PutTraceSegments on "*" in a role that should only delete items; the function logs every request instead.
  count = local.lambda_enabled ? 1 : 0

  function_name = module.names.lambda_function_name
  description   = "DELETE /picus/{key} for ${local.prefix} (telemetry-lambda)"
  role          = aws_iam_role.lambda[0].arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = ["x86_64"]
  memory_size   = 256
  timeout       = 10
  kms_key_arn   = module.kms.key_arn

  # The first code comes from S3 (terraform/README.md, "DELETE as a Lambda function"); the
  # pipeline deploys every later build (update-function-code), so Terraform ignores it.
  s3_bucket = var.lambda_s3_bucket
  s3_key    = var.lambda_s3_key

  reserved_concurrent_executions = var.lambda_reserved_concurrency

  # Tokens: the ALB sends DELETE /picus/* straight here, past the service, so the function
  # checks an admin token as the service does. It gets digests (lambda_api_tokens,
  # admin:sha256:<hex>) rather than reading the service's API_TOKENS secret: the role then
  # needs no secretsmanager or secret-key permission and could not read the read/write
  # tokens, the cold start makes no extra call, and neither the function's environment nor
  # the Terraform state holds a usable token (terraform/README.md, "DELETE as a Lambda").
  environment {
    variables = {
      STORAGE      = "dynamodb"
      TABLE_NAME   = aws_dynamodb_table.this.name
      LOG_FORMAT   = "json"
      RUST_LOG     = var.log_level
      REQUIRE_AUTH = "true"
      API_TOKENS   = var.lambda_api_tokens
      # Invoked only by the ALB, which appends the client's address to X-Forwarded-For.
      TRUST_X_FORWARDED_FOR = "true"
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.lambda[0].name
  }

  lifecycle {
    ignore_changes = [s3_bucket, s3_key, s3_object_version, source_code_hash]

    precondition {
      condition     = var.lambda_s3_bucket != null && var.lambda_s3_key != null
      error_message = "lambda_delete_enabled needs lambda_s3_bucket and lambda_s3_key (the first telemetry-lambda zip)."
    }

    precondition {
      condition     = length(compact(split(",", var.lambda_api_tokens))) > 0
      error_message = "lambda_delete_enabled needs lambda_api_tokens (admin:sha256:<hex> of the admin tokens in the API_TOKENS secret): without one the function refuses to start."
    }
  }

  depends_on = [aws_iam_role_policy.lambda]
}

resource "aws_lb_target_group" "picus_delete" {
  count = local.lambda_enabled ? 1 : 0

  name        = "${local.prefix}-fn"
  target_type = "lambda"
}

resource "aws_lambda_permission" "alb" {
  count = local.lambda_enabled ? 1 : 0

  statement_id  = "AllowInvokeFromTheLoadBalancer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.picus_delete[0].function_name
  principal     = "elasticloadbalancing.amazonaws.com"
  source_arn    = aws_lb_target_group.picus_delete[0].arn
}

resource "aws_lb_target_group_attachment" "picus_delete" {
  count = local.lambda_enabled ? 1 : 0

  target_group_arn = aws_lb_target_group.picus_delete[0].arn
  target_id        = aws_lambda_function.picus_delete[0].arn

  depends_on = [aws_lambda_permission.alb]
}

resource "aws_lb_listener_rule" "picus_delete" {
  count = local.lambda_enabled ? 1 : 0

  listener_arn = local.production_listener_arn
  priority     = 20

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.picus_delete[0].arn
  }

  condition {
    http_request_method {
      values = ["DELETE"]
    }
  }

  condition {
    path_pattern {
      values = ["/picus/*"]
    }
  }
}
