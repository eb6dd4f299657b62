resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_91:Access logs need a separate SSE-S3 bucket (ALB log delivery cannot use a KMS CMK); left as a follow-up, request metrics and 5xx alarms cover monitoring.
  #checkov:skip=CKV2_AWS_20:The HTTP listener redirects to HTTPS whenever var.certificate_arn is set (dynamic default_action), which checkov cannot evaluate.
  #checkov:skip=CKV2_AWS_28:WAF is an account-level choice with per-rule cost; attach a web ACL to this ALB when the service is exposed beyond allowed_cidrs.
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  idle_timeout               = 60
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the ALB; ALB -> task traffic stays inside the VPC on the service port, restricted by security groups.
  name                 = "${var.name}-tg"
  target_type          = "ip" # awsvpc / Fargate
  protocol             = "HTTP"
  port                 = local.container_port
  vpc_id               = aws_vpc.this.id
  deregistration_delay = var.deregistration_delay_seconds

  health_check {
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

# HTTP: forwards when no certificate is given, otherwise redirects to HTTPS.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:HTTP is only served when var.certificate_arn is null; with a certificate this listener only redirects to HTTPS (dynamic default_action).
  #checkov:skip=CKV_AWS_103:TLS policy applies to the HTTPS listener below, which uses var.ssl_policy (TLS 1.2+).
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  dynamic "default_action" {
    for_each = var.certificate_arn == null ? [] : [1]
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
    for_each = var.certificate_arn == null ? [1] : []
    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.this.arn
    }
  }
}

resource "aws_lb_listener" "https" {
  count = var.certificate_arn == null ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}
