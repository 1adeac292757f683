app_name = "bundles"
urlpatterns = []
