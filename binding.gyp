{
  "targets": [
    {
      "target_name": "pulsekeeper_epoll",
      "sources": ["native/epoll.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
