resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "service" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
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
      image                  = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
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
      ]

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
  name             = var.name
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # Rolling update: never below 100 % healthy, up to 200 % while replacing.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  # Fargate spreads tasks over the given subnets' AZs; rebalance after AZ events.
  availability_zone_rebalancing = "ENABLED"
  enable_ecs_managed_tags       = true
  propagate_tags                = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  lifecycle {
    # Autoscaling owns the task count after creation.
    ignore_changes = [desired_count]

    precondition {
      condition     = var.deregistration_delay_seconds < var.stop_timeout_seconds
      error_message = "deregistration_delay_seconds must be shorter than stop_timeout_seconds."
    }

    precondition {
      condition     = var.shutdown_grace_seconds < var.stop_timeout_seconds
      error_message = "stop_timeout_seconds must exceed the service's shutdown_grace_seconds."
    }
  }

  depends_on = [aws_lb_listener.http, aws_iam_role_policy.execution]
}

resource "aws_appautoscaling_target" "service" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu-target"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service.service_namespace
  resource_id        = aws_appautoscaling_target.service.resource_id
  scalable_dimension = aws_appautoscaling_target.service.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 120
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
