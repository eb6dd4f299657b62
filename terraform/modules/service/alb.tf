resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_91:Access logs need a separate SSE-S3 bucket (ALB log delivery cannot use a KMS CMK); left as a follow-up, request metrics and 5xx alarms cover monitoring.
  #checkov:skip=CKV2_AWS_20:The HTTP listener redirects to HTTPS whenever a certificate is configured (dynamic default_action), which checkov cannot evaluate.
  #checkov:skip=CKV2_AWS_28:WAF is an account-level choice with per-rule cost; attach a web ACL to this ALB when the service is exposed beyond allowed_cidrs.
  name                       = local.prefix
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  idle_timeout               = 60
}

locals {
  target_group_health_check = {
    path                = "/api"
    matcher             = "200"
    protocol            = "HTTP"
    port                = "traffic-port"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# Rolling deployments use "blue" only; blue/green shifts traffic between blue and green.
resource "aws_lb_target_group" "blue" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the ALB; ALB -> task traffic stays inside the VPC on the service port, restricted by security groups.
  name                 = "${local.prefix}-blue"
  target_type          = "ip" # awsvpc / Fargate
  protocol             = "HTTP"
  port                 = local.container_port
  vpc_id               = aws_vpc.this.id
  deregistration_delay = var.deregistration_delay_seconds

  health_check {
    path                = local.target_group_health_check.path
    matcher             = local.target_group_health_check.matcher
    protocol            = local.target_group_health_check.protocol
    port                = local.target_group_health_check.port
    interval            = local.target_group_health_check.interval
    timeout             = local.target_group_health_check.timeout
    healthy_threshold   = local.target_group_health_check.healthy_threshold
    unhealthy_threshold = local.target_group_health_check.unhealthy_threshold
  }
}

resource "aws_lb_target_group" "green" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the ALB; ALB -> task traffic stays inside the VPC on the service port, restricted by security groups.
  count = local.blue_green ? 1 : 0

  name                 = "${local.prefix}-green"
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = local.container_port
  vpc_id               = aws_vpc.this.id
  deregistration_delay = var.deregistration_delay_seconds

  health_check {
    path                = local.target_group_health_check.path
    matcher             = local.target_group_health_check.matcher
    protocol            = local.target_group_health_check.protocol
    port                = local.target_group_health_check.port
    interval            = local.target_group_health_check.interval
    timeout             = local.target_group_health_check.timeout
    healthy_threshold   = local.target_group_health_check.healthy_threshold
    unhealthy_threshold = local.target_group_health_check.unhealthy_threshold
  }
}

# Which listener carries production traffic: HTTPS when a certificate is configured, else
# HTTP. In blue/green CodeDeploy moves that listener between the blue and green target
# groups, so Terraform must not reset it: those listeners are separate resources that
# ignore their default action (lifecycle blocks cannot be conditional).
locals {
  http_blue_green  = local.blue_green && !local.https
  https_blue_green = local.blue_green && local.https
}

# HTTP: forwards when no certificate is configured, otherwise redirects to HTTPS.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:HTTP is only served when no certificate is configured; with one this listener only redirects to HTTPS (dynamic default_action).
  #checkov:skip=CKV_AWS_103:TLS policy applies to the HTTPS listener, which uses var.ssl_policy (TLS 1.2+).
  count = local.http_blue_green ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  dynamic "default_action" {
    for_each = local.https ? [1] : []
    content {
      type = "redirect"
      redirect {
        protocol    = "HTTPS"
        port        = "443"
        status_code = "HTTP_301"
      }
    }
  }

  dynamic "default_action" {
    for_each = local.https ? [] : [1]
    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.blue.arn
    }
  }
}

resource "aws_lb_listener" "http_blue_green" {
  #checkov:skip=CKV_AWS_2:Plain HTTP only while the stack has no certificate (set domain_name or certificate_arn for HTTPS).
  #checkov:skip=CKV_AWS_103:No TLS on this listener: it exists only when the stack has no certificate.
  count = local.http_blue_green ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.blue.arn
  }

  lifecycle {
    ignore_changes = [default_action] # CodeDeploy switches it between blue and green
  }
}

resource "aws_lb_listener" "https" {
  count = local.https && !local.blue_green ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = local.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.blue.arn
  }
}

resource "aws_lb_listener" "https_blue_green" {
  count = local.https_blue_green ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = local.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.blue.arn
  }

  lifecycle {
    ignore_changes = [default_action] # CodeDeploy switches it between blue and green
  }
}

# Blue/green: the replacement tasks answer here before production traffic shifts.
resource "aws_lb_listener" "test" {
  #checkov:skip=CKV_AWS_2:The test listener speaks HTTP only when the stack has no certificate; it is closed to the internet (var.test_listener_cidrs, empty by default).
  #checkov:skip=CKV_AWS_103:The test listener uses var.ssl_policy (TLS 1.2+) whenever it is HTTPS.
  count = local.blue_green ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = var.test_listener_port
  protocol          = local.https ? "HTTPS" : "HTTP"
  ssl_policy        = local.https ? var.ssl_policy : null
  certificate_arn   = local.https ? local.certificate_arn : null

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.green[0].arn
  }

  lifecycle {
    ignore_changes = [default_action]
  }
}

locals {
  # The listener that serves clients (HTTPS when configured, else HTTP).
  production_listener_arn = one(concat(
    aws_lb_listener.https[*].arn,
    aws_lb_listener.https_blue_green[*].arn,
    aws_lb_listener.http_blue_green[*].arn,
    local.https ? [] : aws_lb_listener.http[*].arn,
  ))
  serving_listener_arns = concat([local.production_listener_arn], aws_lb_listener.test[*].arn)
}

# /metrics is for Prometheus inside the VPC; from the internet it is a 404 unless opened.
resource "aws_lb_listener_rule" "metrics_not_routed" {
  count = var.metrics_public ? 0 : length(local.serving_listener_arns)

  listener_arn = local.serving_listener_arns[count.index]
  priority     = 10

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      status_code  = "404"
      message_body = jsonencode({ type = "about:blank", title = "Not Found", status = 404 })
    }
  }

  condition {
    path_pattern {
      values = ["/metrics", "/metrics/*"]
    }
  }
}
