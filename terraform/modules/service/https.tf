# Optional HTTPS with a domain: an ACM certificate validated through DNS records in the
# Route 53 zone, and an alias record pointing the name at the load balancer. Or bring an
# existing certificate (var.certificate_arn). Either one turns HTTP into a redirect.

locals {
  issue_certificate = var.domain_name != null && var.certificate_arn == null
  https             = var.certificate_arn != null || var.domain_name != null
  certificate_arn   = var.certificate_arn != null ? var.certificate_arn : (local.issue_certificate ? aws_acm_certificate_validation.this[0].certificate_arn : null)
  service_url = (
    var.domain_name != null ? "https://${var.domain_name}" :
    local.https ? "https://${aws_lb.this.dns_name}" : "http://${aws_lb.this.dns_name}"
  )
}

resource "aws_acm_certificate" "this" {
  count = local.issue_certificate ? 1 : 0

  domain_name       = var.domain_name
  validation_method = "DNS"

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.route53_zone_id != null
      error_message = "domain_name needs route53_zone_id (the zone that validates the certificate and holds the alias record)."
    }
  }
}

# Keyed by the (static) domain name, so the plan knows the records before the certificate.
resource "aws_route53_record" "certificate_validation" {
  for_each = local.issue_certificate ? toset([var.domain_name]) : toset([])

  zone_id         = var.route53_zone_id
  name            = local.certificate_validation[each.key].resource_record_name
  type            = local.certificate_validation[each.key].resource_record_type
  records         = [local.certificate_validation[each.key].resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

locals {
  certificate_validation = local.issue_certificate ? {
    for o in aws_acm_certificate.this[0].domain_validation_options : o.domain_name => o
  } : {}
}

resource "aws_acm_certificate_validation" "this" {
  count = local.issue_certificate ? 1 : 0

  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [for r in aws_route53_record.certificate_validation : r.fqdn]
}

resource "aws_route53_record" "service" {
  count = var.domain_name != null && var.route53_zone_id != null ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = true
  }
}

# The smoke stage and operators read the environment's URL here.
resource "aws_ssm_parameter" "service_url" {
  #checkov:skip=CKV2_AWS_34:The service URL is public information, not a secret; a String parameter is readable by the pipeline without a KMS grant.
  name        = module.names.service_url_parameter
  description = "Base URL of ${local.prefix}"
  type        = "String"
  value       = local.service_url
}
