"""A single-file Django project: the settings, the views, the URLs and the WSGI
application in one module (`ferrocorn django_site` serves `application`), served from the
test virtualenv.

    GET  /           "Hello from Django"
    POST /echo       CSRF-exempt: the method, a form field, a query parameter, and the
                     request's SCRIPT_NAME, path and path_info
    POST /guarded    not exempt: Django's CSRF check answers 403
"""

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="ferrocorn-tests-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    INSTALLED_APPS=[],
    USE_TZ=True,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after settings)
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def index(request):
    return HttpResponse("Hello from Django", content_type="text/plain")


@csrf_exempt
def echo(request):
    return JsonResponse(
        {
            "method": request.method,
            "name": request.POST.get("name"),
            "q": request.GET.get("q"),
            "script_name": request.META["SCRIPT_NAME"],
            "path": request.path,
            "path_info": request.path_info,
        }
    )


def guarded(request):
    return HttpResponse("the CSRF check let this through", content_type="text/plain")


urlpatterns = [path("", index), path("echo", echo), path("guarded", guarded)]

application = get_wsgi_application()
