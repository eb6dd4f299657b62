# Single-table design used by the service's DynamoDB backend. The key names and types
# must equal the constants PARTITION_KEY / SORT_KEY in src/ (tests/delivery checks it).
resource "aws_dynamodb_table" "this" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = true

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # Readings (and rollups) carry their expiry as epoch seconds; DynamoDB deletes expired
  # items in the background, at no write cost.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = module.kms.key_arn
  }
}
