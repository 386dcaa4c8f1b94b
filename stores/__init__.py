"""All MongoDB access. Nothing outside this package sees a motor or pymongo type."""
