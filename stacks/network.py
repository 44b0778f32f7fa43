"""Where the functions that call Synapse run: the configured VPC, subnets and security groups,
and the VPC endpoints they need for the AWS calls they make besides Synapse (config.network)."""

from typing import Any

from aws_cdk import Annotations, Stack
from aws_cdk import aws_ec2 as ec2

from chat_provisioning.domain.config import GATEWAY_ENDPOINTS, ChatConfig


def network(stack: Stack, config: ChatConfig) -> dict[str, Any]:
    """The keyword arguments that put a function in the VPC; none without one (a warning)."""
    net = config.network
    if not net.vpc_id:
        Annotations.of(stack).add_warning_v2(
            "chat-provisioning:no-vpc",
            "network.vpc_id is not set: the step functions run outside any VPC and cannot "
            f"reach {config.synapse_url} if it is inside one. Set network.* in cdk.json for production.")
        return {}
    vpc = ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id=net.vpc_id, vpc_cidr_block=net.vpc_cidr,
                                      availability_zones=list(net.availability_zones),
                                      private_subnet_ids=list(net.subnet_ids),
                                      private_subnet_route_table_ids=list(net.route_table_ids) or None)
    subnets = ec2.SubnetSelection(subnets=vpc.private_subnets)
    if net.endpoints:
        endpoints(stack, vpc, subnets, net.endpoints)
    return {"vpc": vpc, "vpc_subnets": subnets,
            "security_groups": [ec2.SecurityGroup.from_security_group_id(stack, f"Sg{i}", sg)
                                for i, sg in enumerate(net.security_group_ids)]}


def endpoints(stack: Stack, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, services: tuple[str, ...]) -> None:
    """What the functions in the VPC call besides Synapse, reached without a NAT gateway.
    An interface endpoint's private DNS answers for the whole VPC, so it takes HTTPS from the
    whole VPC (IAM still decides what each caller may do), as the public endpoint would."""
    interface = [s for s in services if s not in GATEWAY_ENDPOINTS]
    if interface:
        endpoint_sg = ec2.SecurityGroup(stack, "EndpointsSg", vpc=vpc, allow_all_outbound=False,
                                        description="chat-provisioning VPC endpoints: HTTPS from the VPC")
        endpoint_sg.add_ingress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(443), "the VPC")
    for service in interface:
        ec2.InterfaceVpcEndpoint(stack, f"{service}Endpoint", vpc=vpc, subnets=subnets,
                                 service=ec2.InterfaceVpcEndpointAwsService(service),
                                 security_groups=[endpoint_sg], private_dns_enabled=True, open=False)
    for service in set(services) & set(GATEWAY_ENDPOINTS):
        ec2.GatewayVpcEndpoint(stack, f"{service}Endpoint", vpc=vpc, subnets=[subnets],
                               service=ec2.GatewayVpcEndpointAwsService(service))
