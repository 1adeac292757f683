from django.urls import path

from . import views

app_name = "forum"

urlpatterns = [
    path("<slug:slug>/", views.thread_list, name="threads"),
    path("<slug:slug>/new/", views.new_thread, name="new_thread"),
    path("<slug:slug>/moderation/", views.moderation_queue, name="moderation"),
    path("<slug:slug>/threads/<int:pk>/", views.thread_detail, name="thread"),
    path("<slug:slug>/threads/<int:pk>/reply/", views.reply, name="reply"),
    path("<slug:slug>/threads/<int:pk>/lock/", views.thread_setting, {"setting": "lock"}, name="lock"),
    path("<slug:slug>/threads/<int:pk>/pin/", views.thread_setting, {"setting": "pin"}, name="pin"),
    path("<slug:slug>/threads/<int:pk>/subscribe/", views.thread_setting, {"setting": "subscribe"}, name="subscribe"),
    path("posts/<int:pk>/edit/", views.edit_post, name="edit_post"),
    path("posts/<int:pk>/moderate/", views.moderate_post, name="moderate_post"),
    path("posts/<int:pk>/report/", views.report_post, name="report_post"),
    path("reports/<int:pk>/dismiss/", views.dismiss_report, name="dismiss_report"),
    path("images/<uuid:pk>/", views.attachment, name="attachment"),
]
