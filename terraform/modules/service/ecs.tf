resource "aws_ecs_cluster" "this" {
  name = module.names.cluster_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "service" {
  name              = "/ecs/${local.prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
}

# Terraform owns the task definition's content (roles, environment, secrets, sizes); the
# pipeline owns which image runs: each deploy registers a new revision from the family's
# latest one with only the image replaced, and points the service at it. So the image
# here matters only for the service's very first tasks (local.bootstrap_image, a digest
# that must exist), and an apply never rolls a deployed image back.
resource "aws_ecs_task_definition" "this" {
  family                   = module.names.task_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn # pulls the image, writes logs
  task_role_arn            = aws_iam_role.task.arn      # what the service itself may call

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = local.container_name
      image                  = local.bootstrap_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      # The service drains for SHUTDOWN_GRACE_SECONDS after SIGTERM; ECS waits stopTimeout
      # before SIGKILL, so stopTimeout must be longer (see the precondition on the service).
      stopTimeout = var.stop_timeout_seconds

      portMappings = [
        {
          containerPort = local.container_port
          protocol      = "tcp"
        }
      ]

      environment = [
        { name = "STORAGE", value = "dynamodb" },
        { name = "TABLE_NAME", value = aws_dynamodb_table.this.name },
        { name = "PORT", value = tostring(local.container_port) },
        { name = "BIND_ADDR", value = "0.0.0.0" },
        { name = "LOG_FORMAT", value = "json" },
        { name = "RUST_LOG", value = var.log_level },
        { name = "AWS_REGION", value = local.region },
        { name = "SHUTDOWN_GRACE_SECONDS", value = tostring(var.shutdown_grace_seconds) },
        # Start-up fails when no token is configured: the service is never open by accident.
        { name = "REQUIRE_AUTH", value = "true" },
        # Tasks take traffic from the ALB only (their security group admits nothing else), so
        # the client address for per-client limits is the last X-Forwarded-For entry, the one
        # the ALB appended; without it every client would share the ALB's address.
        { name = "TRUST_X_FORWARDED_FOR", value = "true" },
      ]

      # Injected by the ECS agent (execution role) from Secrets Manager at task start.
      secrets = local.task_secrets

      # No shell in the image: the binary checks itself (GET http://127.0.0.1:$PORT/api).
      healthCheck = {
        command     = ["CMD", "/usr/local/bin/telemetry", "healthcheck"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 15
      }

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.service.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "service"
        }
      }
    }
  ])
}

resource "aws_ecs_service" "this" {
  name             = module.names.service_name
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_controller {
    type = local.blue_green ? "CODE_DEPLOY" : "ECS"
  }

  # Rolling update: never below 100 % healthy, up to 200 % while replacing.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  # Fargate spreads tasks over the given subnets' AZs; rebalance after AZ events (ECS
  # deployment controller only).
  availability_zone_rebalancing = local.blue_green ? "DISABLED" : "ENABLED"
  enable_ecs_managed_tags       = true
  propagate_tags                = "SERVICE"

  # Rolling: a deployment whose tasks keep failing, or that trips the rollback alarms, is
  # rolled back to the last completed one. (Blue/green: CodeDeploy rolls back, bluegreen.tf.)
  dynamic "deployment_circuit_breaker" {
    for_each = local.blue_green ? [] : [1]
    content {
      enable   = true
      rollback = true
    }
  }

  dynamic "alarms" {
    for_each = local.blue_green ? [] : [1]
    content {
      enable      = true
      rollback    = true
      alarm_names = local.rollback_alarm_names
    }
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.blue.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  lifecycle {
    # One owner each: autoscaling owns the task count, the pipeline owns the running task
    # definition (see aws_ecs_task_definition.this), and in blue/green CodeDeploy owns the
    # load balancer binding (the live target group alternates).
    ignore_changes = [desired_count, task_definition, load_balancer]

    precondition {
      condition     = var.deregistration_delay_seconds < var.stop_timeout_seconds
      error_message = "deregistration_delay_seconds must be shorter than stop_timeout_seconds."
    }

    precondition {
      condition     = var.shutdown_grace_seconds < var.stop_timeout_seconds
      error_message = "stop_timeout_seconds must exceed the service's shutdown_grace_seconds."
    }

    precondition {
      condition     = var.min_capacity <= var.desired_count && var.desired_count <= var.max_capacity
      error_message = "desired_count must lie within [min_capacity, max_capacity]."
    }
  }

  depends_on = [
    aws_lb_listener.http,
    aws_lb_listener.http_blue_green,
    aws_lb_listener.https,
    aws_lb_listener.https_blue_green,
    aws_iam_role_policy.execution,
  ]
}
