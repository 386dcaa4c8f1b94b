"""The aiohttp edge: the /graphql view, HTTP guards, authentication, ops endpoints and the app's parts."""
