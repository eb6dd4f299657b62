# deployment = "blue_green": CodeDeploy shifts production traffic from the running (blue)
# tasks to the replacement (green) tasks after they answered on the test listener, and
# rolls back automatically when the deployment fails or a rollback alarm fires. ECS-native
# blue/green needs AWS provider >= 6.4; this stack pins 5.x, hence CodeDeploy.

resource "aws_codedeploy_app" "this" {
  count = local.blue_green ? 1 : 0

  name             = module.names.codedeploy_app_name
  compute_platform = "ECS"
}

resource "aws_codedeploy_deployment_group" "this" {
  count = local.blue_green ? 1 : 0

  app_name               = aws_codedeploy_app.this[0].name
  deployment_group_name  = module.names.codedeploy_group_name
  deployment_config_name = "CodeDeployDefault.ECSAllAtOnce"
  service_role_arn       = aws_iam_role.codedeploy[0].arn

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  blue_green_deployment_config {
    deployment_ready_option {
      action_on_timeout = "CONTINUE_DEPLOYMENT"
    }
    terminate_blue_instances_on_deployment_success {
      action                           = "TERMINATE"
      termination_wait_time_in_minutes = 15 # the window for a one-click rollback
    }
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }

  alarm_configuration {
    enabled = true
    alarms  = local.rollback_alarm_names
  }

  ecs_service {
    cluster_name = aws_ecs_cluster.this.name
    service_name = aws_ecs_service.this.name
  }

  load_balancer_info {
    target_group_pair_info {
      prod_traffic_route {
        listener_arns = [local.production_listener_arn]
      }
      test_traffic_route {
        listener_arns = [aws_lb_listener.test[0].arn]
      }
      target_group {
        name = aws_lb_target_group.blue.name
      }
      target_group {
        name = aws_lb_target_group.green[0].name
      }
    }
  }
}
