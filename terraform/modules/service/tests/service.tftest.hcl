# The environment stack planned and applied against a mocked AWS provider (no account, no
# network): names, ownership of the running image, listeners, IAM, deployment modes.

mock_provider "aws" {
  source = "../../mocks"
}

variables {
  environment = "prod"
}

run "defaults_rolling" {
  command = apply

  # Each environment has its own cluster and service, named by modules/naming.
  assert {
    condition     = aws_ecs_service.this.name == "telemetry-prod" && aws_ecs_cluster.this.name == "telemetry-prod"
    error_message = "the prod stack must create service and cluster telemetry-prod"
  }

  assert {
    condition     = aws_dynamodb_table.this.name == "telemetry-prod-data"
    error_message = "each environment has its own table"
  }

  # Local Zones / Wavelength zones that the account opted into are "available" too.
  assert {
    condition = anytrue([for f in data.aws_availability_zones.available.filter :
    f.name == "opt-in-status" && contains(f.values, "opt-in-not-required") && length(f.values) == 1])
    error_message = "the AZ lookup must keep only zones that need no opt-in (Fargate does not run in Local Zones)"
  }

  # Rolling: ECS controller, circuit breaker with rollback, alarm-based rollback.
  assert {
    condition     = aws_ecs_service.this.deployment_controller[0].type == "ECS"
    error_message = "rolling deployments use the ECS deployment controller"
  }
  assert {
    condition     = aws_ecs_service.this.deployment_circuit_breaker[0].enable && aws_ecs_service.this.deployment_circuit_breaker[0].rollback
    error_message = "the circuit breaker must roll back"
  }
  assert {
    condition = (aws_ecs_service.this.alarms[0].enable && aws_ecs_service.this.alarms[0].rollback &&
      contains(aws_ecs_service.this.alarms[0].alarm_names, "telemetry-prod-target-5xx") &&
    contains(aws_ecs_service.this.alarms[0].alarm_names, "telemetry-prod-target-p99-latency"))
    error_message = "the service must roll back on its 5xx and latency alarms"
  }

  # The task definition starts from an image digest that exists (the data source fails the
  # plan otherwise), never a tag that might not have been pushed yet.
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/telemetry@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    error_message = "the bootstrap image must be pinned by the digest of an existing image"
  }

  # Access control: REQUIRE_AUTH and API_TOKENS from Secrets Manager.
  assert {
    condition     = contains(jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment, { name = "REQUIRE_AUTH", value = "true" })
    error_message = "the task must run with REQUIRE_AUTH=true"
  }
  assert {
    condition     = contains(jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment, { name = "TRUST_X_FORWARDED_FOR", value = "true" })
    error_message = "behind the ALB the client address is the last X-Forwarded-For entry: TRUST_X_FORWARDED_FOR=true"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets == [{ name = "API_TOKENS", valueFrom = aws_secretsmanager_secret.api_tokens.arn }]
    error_message = "API_TOKENS must come from the api-tokens secret (and nothing else by default)"
  }
  assert {
    condition     = aws_secretsmanager_secret.api_tokens.kms_key_id == module.kms.key_arn && aws_secretsmanager_secret.api_tokens.name == "telemetry-prod/api-tokens"
    error_message = "the tokens secret is encrypted with the stack's key"
  }
  assert {
    condition = [for s in data.aws_iam_policy_document.execution.statement : s.resources
    if contains(s.actions, "secretsmanager:GetSecretValue")] == [toset([aws_secretsmanager_secret.api_tokens.arn])]
    error_message = "the execution role may read exactly the tokens secret"
  }

  # Retention: DynamoDB TTL on expires_at.
  assert {
    condition     = aws_dynamodb_table.this.ttl[0].enabled && aws_dynamodb_table.this.ttl[0].attribute_name == "expires_at"
    error_message = "TTL must be enabled on expires_at"
  }

  # /metrics is not routed from the internet.
  assert {
    condition = (length(aws_lb_listener_rule.metrics_not_routed) == 1 &&
      aws_lb_listener_rule.metrics_not_routed[0].listener_arn == aws_lb_listener.http[0].arn &&
      aws_lb_listener_rule.metrics_not_routed[0].action[0].type == "fixed-response" &&
      aws_lb_listener_rule.metrics_not_routed[0].action[0].fixed_response[0].status_code == "404" &&
    contains(flatten([for c in aws_lb_listener_rule.metrics_not_routed[0].condition : [for p in c.path_pattern : p.values]]), "/metrics"))
    error_message = "the serving listener must answer /metrics with 404"
  }

  # Without a certificate: plain HTTP forward, no HTTPS listener, no Lambda.
  assert {
    condition     = aws_lb_listener.http[0].default_action[0].type == "forward" && length(aws_lb_listener.https) == 0
    error_message = "without a certificate the HTTP listener forwards"
  }
  assert {
    condition     = length(aws_lambda_function.picus_delete) == 0 && length(aws_lb_listener_rule.picus_delete) == 0
    error_message = "DELETE is served by the service unless lambda_delete_enabled"
  }

  # Autoscaling: CPU, memory and requests per target, with cooldowns, within min/max.
  assert {
    condition = (aws_appautoscaling_target.service.min_capacity == 2 && aws_appautoscaling_target.service.max_capacity == 6 &&
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].scale_in_cooldown == 300 &&
      aws_appautoscaling_policy.requests[0].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ALBRequestCountPerTarget" &&
    aws_appautoscaling_policy.memory.target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ECSServiceAverageMemoryUtilization")
    error_message = "autoscaling must track CPU, memory and ALB requests per target"
  }

  assert {
    condition     = aws_ssm_parameter.service_url.name == "/telemetry/prod/service-url" && aws_ssm_parameter.service_url.value == "http://telemetry-123.eu-west-1.elb.amazonaws.com"
    error_message = "the service URL is published for the smoke stage"
  }
}

# An apply with another image_tag registers a revision pinned to that image's digest. That
# it never moves the running service (ignore_changes on task_definition: the pipeline owns
# what runs) is pinned by tests/delivery (the mock provider cannot plan a replacement).
run "bootstrap_image_is_pinned_by_digest" {
  command = apply

  variables {
    image_tag = "0123456789ab"
  }

  override_data {
    target = data.aws_ecr_image.bootstrap
    values = {
      image_digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
    }
  }

  assert {
    condition     = endswith(jsondecode(aws_ecs_task_definition.this.container_definitions)[0].image, "@sha256:1111111111111111111111111111111111111111111111111111111111111111")
    error_message = "the new revision uses the new digest"
  }
}

run "longest_allowed_names_fit_aws_limits" {
  command = apply

  variables {
    name                  = "abcdefghijklmnopqrst" # 20, the maximum
    environment           = "stage"                # 5, the maximum
    deployment            = "blue_green"
    lambda_delete_enabled = true
    lambda_s3_bucket      = "artifacts"
    lambda_s3_key         = "lambda/0123456789ab.zip"
    lambda_api_tokens     = "admin:sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    metrics_token_enabled = true
  }

  assert {
    condition = alltrue([for n in concat([aws_lb_target_group.blue.name], aws_lb_target_group.green[*].name,
    aws_lb_target_group.picus_delete[*].name, [aws_lb.this.name]) : length(n) <= 32])
    error_message = "target group and load balancer names must be at most 32 characters"
  }
  assert {
    condition = alltrue([for n in concat([aws_iam_role.execution.name, aws_iam_role.task.name, aws_iam_role.flow_logs.name],
    aws_iam_role.codedeploy[*].name, aws_iam_role.lambda[*].name) : length(n) <= 64])
    error_message = "IAM role names must be at most 64 characters"
  }
  assert {
    condition = alltrue([
      length(aws_lambda_function.picus_delete[0].function_name) <= 64,
      length(aws_ecs_service.this.name) <= 255,
      length(aws_dynamodb_table.this.name) <= 255,
      length(aws_sns_topic.alarms.name) <= 256,
      length(module.kms.alias_name) <= 256,
      length(aws_appautoscaling_policy.cpu.name) <= 255,
    ])
    error_message = "function, service, table, topic and policy names must fit their limits"
  }
}

run "name_longer_than_20_is_rejected" {
  command = plan

  variables {
    name = "abcdefghijklmnopqrstu" # 21: "<name>-stage-green" would be 33
  }

  expect_failures = [var.name]
}

run "https_with_domain" {
  command = apply

  variables {
    domain_name     = "telemetry.example.com"
    route53_zone_id = "Z0123456789ABCDEFGHIJ"
  }

  override_resource {
    target = aws_acm_certificate.this
    values = {
      arn = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
      domain_validation_options = [{
        domain_name           = "telemetry.example.com"
        resource_record_name  = "_x.telemetry.example.com."
        resource_record_type  = "CNAME"
        resource_record_value = "_y.acm-validations.aws."
      }]
    }
  }

  assert {
    condition = (aws_lb_listener.http[0].default_action[0].type == "redirect" &&
      aws_lb_listener.http[0].default_action[0].redirect[0].protocol == "HTTPS" &&
    aws_lb_listener.http[0].default_action[0].redirect[0].status_code == "HTTP_301")
    error_message = "with a domain, HTTP redirects to HTTPS"
  }
  assert {
    condition     = aws_lb_listener.https[0].ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06" && aws_lb_listener.https[0].certificate_arn == aws_acm_certificate_validation.this[0].certificate_arn
    error_message = "the HTTPS listener uses the validated certificate and a TLS 1.2+ policy"
  }
  assert {
    condition     = aws_acm_certificate.this[0].validation_method == "DNS" && length(aws_route53_record.certificate_validation) == 1
    error_message = "the certificate is validated through DNS records in the zone"
  }
  assert {
    condition     = aws_route53_record.service[0].name == "telemetry.example.com" && aws_route53_record.service[0].alias[0].name == aws_lb.this.dns_name
    error_message = "an alias record points the domain at the ALB"
  }
  assert {
    condition     = aws_lb_listener_rule.metrics_not_routed[0].listener_arn == aws_lb_listener.https[0].arn
    error_message = "the /metrics 404 rule sits on the HTTPS listener"
  }
  assert {
    condition     = aws_ssm_parameter.service_url.value == "https://telemetry.example.com"
    error_message = "the service URL is the domain over HTTPS"
  }
}

run "weak_tls_policy_is_rejected" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    ssl_policy      = "ELBSecurityPolicy-2016-08"
  }

  expect_failures = [var.ssl_policy]
}

run "blue_green" {
  command = apply

  variables {
    deployment = "blue_green"
  }

  assert {
    condition     = aws_ecs_service.this.deployment_controller[0].type == "CODE_DEPLOY" && length(aws_ecs_service.this.deployment_circuit_breaker) == 0
    error_message = "blue/green hands deployments to CodeDeploy"
  }
  assert {
    condition = (length(aws_lb_target_group.green) == 1 && length(aws_lb_listener.test) == 1 &&
    length(aws_lb_listener.http) == 0 && length(aws_lb_listener.http_blue_green) == 1)
    error_message = "blue/green needs a second target group, a test listener and a listener CodeDeploy may switch"
  }
  assert {
    condition = (aws_codedeploy_deployment_group.this[0].auto_rollback_configuration[0].enabled &&
      contains(aws_codedeploy_deployment_group.this[0].auto_rollback_configuration[0].events, "DEPLOYMENT_FAILURE") &&
      contains(aws_codedeploy_deployment_group.this[0].auto_rollback_configuration[0].events, "DEPLOYMENT_STOP_ON_ALARM") &&
    contains(aws_codedeploy_deployment_group.this[0].alarm_configuration[0].alarms, "telemetry-prod-target-5xx"))
    error_message = "CodeDeploy rolls back on failure and on the rollback alarms"
  }
  assert {
    condition = (aws_codedeploy_deployment_group.this[0].deployment_group_name == "telemetry-prod" &&
    aws_codedeploy_deployment_group.this[0].ecs_service[0].service_name == aws_ecs_service.this.name)
    error_message = "the deployment group deploys this environment's service"
  }
  assert {
    condition     = length(aws_appautoscaling_policy.requests) == 0
    error_message = "request-count scaling names one target group, so it is off in blue/green"
  }
  assert {
    condition     = length(aws_lb_listener_rule.metrics_not_routed) == 2
    error_message = "/metrics is a 404 on the test listener too"
  }
}

run "delete_as_lambda" {
  command = apply

  variables {
    lambda_delete_enabled = true
    lambda_s3_bucket      = "artifacts"
    lambda_s3_key         = "lambda/0123456789ab.zip"
    lambda_api_tokens     = "admin:sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
  }

  assert {
    condition = (aws_lambda_function.picus_delete[0].runtime == "provided.al2023" &&
      aws_lambda_function.picus_delete[0].handler == "bootstrap" &&
    aws_lambda_function.picus_delete[0].kms_key_arn == module.kms.key_arn)
    error_message = "the function runs the bootstrap binary on provided.al2023, environment encrypted with the stack key"
  }
  assert {
    condition     = aws_cloudwatch_log_group.lambda[0].retention_in_days == 365 && aws_cloudwatch_log_group.lambda[0].kms_key_id == module.kms.key_arn
    error_message = "the function's log group has a retention and the stack key"
  }
  assert {
    condition = (toset(flatten([for s in data.aws_iam_policy_document.lambda.statement : [for a in s.actions : a if startswith(a, "dynamodb:")]])) == toset(["dynamodb:DeleteItem"]) &&
    [for s in data.aws_iam_policy_document.lambda.statement : s.resources if contains(s.actions, "dynamodb:DeleteItem")] == [toset([aws_dynamodb_table.this.arn])])
    error_message = "the function may only DeleteItem, on its table only"
  }
  assert {
    condition     = aws_lb_target_group.picus_delete[0].target_type == "lambda" && aws_lambda_permission.alb[0].principal == "elasticloadbalancing.amazonaws.com" && aws_lambda_permission.alb[0].source_arn == aws_lb_target_group.picus_delete[0].arn
    error_message = "the ALB may invoke the function through its lambda target group"
  }
  assert {
    condition = (toset(flatten([for c in aws_lb_listener_rule.picus_delete[0].condition : [for m in c.http_request_method : m.values]])) == toset(["DELETE"]) &&
      toset(flatten([for c in aws_lb_listener_rule.picus_delete[0].condition : [for p in c.path_pattern : p.values]])) == toset(["/picus/*"]) &&
    aws_lb_listener_rule.picus_delete[0].action[0].target_group_arn == aws_lb_target_group.picus_delete[0].arn)
    error_message = "DELETE /picus/* is forwarded to the function"
  }
  assert {
    condition     = aws_lambda_function.picus_delete[0].environment[0].variables.REQUIRE_AUTH == "true"
    error_message = "the function refuses to run without tokens"
  }
  assert {
    condition = (aws_lambda_function.picus_delete[0].environment[0].variables.API_TOKENS == "admin:sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" &&
    aws_lambda_function.picus_delete[0].environment[0].variables.TRUST_X_FORWARDED_FOR == "true")
    error_message = "the function gets the admin token digests and takes the client address from the ALB's X-Forwarded-For"
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.lambda.statement : s if length([for a in s.actions : a if startswith(a, "secretsmanager:")]) > 0]) == 0
    error_message = "the function reads no secret: it gets token digests, not the API_TOKENS secret"
  }
}

run "lambda_tokens_must_be_hashes" {
  command = plan

  variables {
    lambda_api_tokens = "admin:plain-secret-token"
  }

  expect_failures = [var.lambda_api_tokens]
}

run "lambda_tokens_must_be_admin_tokens" {
  command = plan

  variables {
    lambda_api_tokens = "read:sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
  }

  expect_failures = [var.lambda_api_tokens]
}

run "lambda_needs_an_admin_token" {
  command = plan

  variables {
    lambda_delete_enabled = true
    lambda_s3_bucket      = "artifacts"
    lambda_s3_key         = "lambda/0123456789ab.zip"
  }

  expect_failures = [aws_lambda_function.picus_delete]
}

run "metrics_opened_and_token" {
  command = apply

  variables {
    metrics_public        = true
    metrics_token_enabled = true
  }

  assert {
    condition     = length(aws_lb_listener_rule.metrics_not_routed) == 0
    error_message = "metrics_public removes the 404 rule"
  }
  assert {
    condition     = contains([for s in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets : s.name], "METRICS_TOKEN")
    error_message = "metrics_token_enabled passes METRICS_TOKEN from its secret"
  }
}
