{
  "format": "rampart-model-signature/v1",
  "key_id": "eac154be7b4cbcc8",
  "sig": "ebcd871d593a8be3b821e5dd6d60dd3827e02f3eedddccf761cdf74e9ee62f1aa757a3c873214fccc418cc56c3e4c8d027577454b564559760ac405f5179be0b"
}
