from django.apps import AppConfig


class AlgorithmsConfig(AppConfig):
    name = "mica.algorithms"
    label = "algorithms"
    verbose_name = "Algorithms (model containers)"

    def ready(self):
        from mica.uploads.purposes import register

        from .submit import admit_container, admit_metric_container, receive_container, receive_metric_container

        register("container-submission", admit=admit_container, receive=receive_container)
        register("metric-container", admit=admit_metric_container, receive=receive_metric_container)
